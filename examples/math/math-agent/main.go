// Command math-agent serves the math example (add, multiply, fib_stream, whoami) at
// math@fame.fabric through the sentinel at FAME_DIRECT_ADMISSION_URL, or wherever its
// admission places it (FAME_ADMISSION_PROFILE=welcome: FAME_ADMISSION_SERVICE_URL,
// FAME_ADMISSION_TOKEN_URL, FAME_ADMISSION_CLIENT_ID/SECRET, FAME_CA_CERTS; see package
// node).
//
// MATH_LOGICAL selects how it binds: "*.fame.fabric" (default) joins the pool of replicas,
// "fame.fabric" binds the address exactly (the last binder wins). AGENT_NAME is what whoami
// answers (default: the node's system id). It prints READY on stdout once bound and
// advertised. On SIGTERM or SIGINT (or when the sentinel reports that an operator drains it,
// POST /admin/replicas/<id>/drain) it drains: it asks the sentinel to move its sessions to
// the other replicas, keeps serving what is pinned and in flight, and exits 0 once the
// sentinel reports it drained or after FAME_DRAIN_TIMEOUT (30 s); a second signal exits at
// once.
//
// For the chaos harness (fame chaos), two opt-in variables: MATH_EXEC_LOG=FILE appends one JSON
// line per execution of a call whose params carry an idempotency key (key, attempt, replica,
// op, time; package mathagent's ExecLog), written before the reply leaves; MATH_METRICS_ADDR=
// host:port serves the Go runtime and process metrics (go_goroutines ...) at /metrics and
// the heap and goroutine profiles at /debug/pprof/ (loopback addresses only: nothing guards them).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "math-agent:", err)
		os.Exit(1)
	}
}

func run() error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, err := config.Node()
	if err != nil {
		return err
	}
	// Tracing (OTEL_EXPORTER_OTLP_ENDPOINT; off when unset): flushed after the node closes.
	tcfg, err := config.NodeTracing(config.OSEnv, "math-agent")
	if err != nil {
		return err
	}
	if cfg.Tracer, err = tracing.Setup(ctx, tcfg); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cfg.Tracer.Shutdown(sctx)
	}()
	logical := os.Getenv("MATH_LOGICAL")
	if logical == "" {
		logical = "*.fame.fabric"
	}
	if logical != "*.fame.fabric" && logical != "fame.fabric" {
		return fmt.Errorf("MATH_LOGICAL must be \"*.fame.fabric\" or \"fame.fabric\", got %q", logical)
	}
	cfg.RequestedLogicals = []string{logical}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The node's own metrics (refusals, reply cache) go beside the process's on the metrics
	// address, so the registry is made before the node connects.
	metricsAddr := os.Getenv("MATH_METRICS_ADDR")
	reg := prometheus.NewRegistry()
	if metricsAddr != "" {
		cfg.Registerer = reg
	}
	n, err := node.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	name := os.Getenv("AGENT_NAME")
	if name == "" {
		name = n.SystemID()
	}
	var execLog *mathagent.ExecLog
	if path := os.Getenv("MATH_EXEC_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("MATH_EXEC_LOG: %w", err)
		}
		defer f.Close()
		execLog = mathagent.NewExecLog(f, name)
	}
	if metricsAddr != "" {
		stop, err := serveMetrics(metricsAddr, reg, cfg.Logger)
		if err != nil {
			return fmt.Errorf("MATH_METRICS_ADDR: %w", err)
		}
		defer stop()
	}
	if err := n.Serve(ctx, mathagent.Address, mathagent.OpsWithLog(name, execLog)); err != nil {
		return err
	}
	fmt.Println("READY")
	select {
	case sig := <-sigs:
		cfg.Logger.Info("signal received: draining (a second signal exits at once)", "signal", sig.String())
	case <-n.DrainRequested():
		cfg.Logger.Info("the sentinel drains this replica")
	}
	// The drain is owned here: it ends with the sentinel's "drained", the node's drain
	// timeout (FAME_DRAIN_TIMEOUT, applied by Drain) or a second signal (which cancels it).
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	go func() {
		select {
		case <-sigs:
			dcancel()
		case <-dctx.Done():
		}
	}()
	if err := n.Drain(dctx); err != nil {
		cfg.Logger.Warn("drain ended without the sentinel's drained", "err", err)
	}
	if execLog != nil && execLog.Err() != nil {
		return execLog.Err()
	}
	return nil
}

// serveMetrics serves the Go runtime and process collectors at addr/metrics (and the pprof
// profiles) until stop, which closes the listener and waits for the server goroutine.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	m, err := serveMetricsAddr(addr, reg, log)
	if err != nil {
		return nil, err
	}
	return m.close, nil
}

// metricsServer is a running metrics endpoint and the address it listens on.
type metricsServer struct {
	addr  string
	close func()
}

func serveMetricsAddr(addr string, reg *prometheus.Registry, log *slog.Logger) (*metricsServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%q is not a loopback address: the metrics and profiles have no access control", addr)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Heap and goroutine profiles, to tell a leak from a bounded cache filling up.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	return &metricsServer{addr: l.Addr().String(), close: func() { _ = srv.Close(); <-done }}, nil
}
