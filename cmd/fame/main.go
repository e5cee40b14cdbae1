// Command fame is the one fame-go binary: the sentinel and the services around it.
//
//	fame sentinel [-c sentinel.yml]   run the router
//	fame validate FILE                check a config file as a start or reload would; list every problem
//	fame version                      print the version
//
// Further subcommands (services, load generator) register themselves from their own files.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fame-go/fame/cluster"
	"github.com/fame-go/fame/gateway"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/sentinel"
	"github.com/fame-go/fame/tracing"
)

// commands maps each subcommand to its entry point. Subcommands living in other files of this
// package register themselves with register from an init function.
var commands = map[string]func(ctx context.Context, args []string) error{
	"sentinel": runSentinel,
	"validate": runValidate,
	"version":  runVersion,
}

func register(name string, run func(ctx context.Context, args []string) error) { commands[name] = run }

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "fame: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd(ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "fame %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(w, "usage: fame <command> [flags]\n\ncommands: %s\n\nRun 'fame <command> -h' for a command's flags.\n", strings.Join(names, ", "))
}

func runVersion(_ context.Context, _ []string) error {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = s.Value[:12]
			}
		}
	}
	fmt.Println("fame", v)
	return nil
}

func runValidate(_ context.Context, args []string) error {
	return validate(os.Stdout, args, config.OSEnv)
}

// validate checks a config file as `fame sentinel` does at start and at every reload (the same
// configSource.check): every problem is listed, in one error; unknown keys that are not
// misspellings of known ones (those are errors) are listed as ignored.
func validate(w io.Writer, args []string, env config.Getenv) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := fs.String("c", "", "config file to check (or give it as the argument)")
	tlsCert := fs.String("tls-cert", os.Getenv("FAME_TLS_CERT_FILE"), "also check this certificate chain (PEM), as fame sentinel -tls-cert")
	tlsKey := fs.String("tls-key", os.Getenv("FAME_TLS_KEY_FILE"), "private key for -tls-cert (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" || fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != *path) {
		return errors.New("usage: fame validate [-tls-cert FILE -tls-key FILE] FILE (or -c FILE)")
	}
	c, err := configSource{path: *path, env: env, tlsCert: *tlsCert, tlsKey: *tlsKey}.check()
	for _, k := range c.ignored {
		fmt.Fprintf(w, "%s: %s\n", *path, k)
	}
	if err != nil {
		return err
	}
	opts := c.opts
	gw := ""
	if opts.Gateway.Enabled {
		gw = ", gateway on"
	}
	fmt.Fprintf(w, "%s: ok (listen %s:%d, security %s, admission %s, load balancing %s, stickiness %v%s)\n",
		*path, opts.Host, opts.Port, opts.SecurityProfile, opts.AdmissionProfile, opts.LoadBalancing, opts.Stickiness, gw)
	return nil
}

func runSentinel(ctx context.Context, args []string) error {
	// SIGHUP reloads; caught from the start, as its default would end the process.
	hup, stopHUP := notifyHUP()
	defer stopHUP()
	fs := flag.NewFlagSet("sentinel", flag.ContinueOnError)
	path := fs.String("c", os.Getenv("FAME_CONFIG"), "config file (default: built-in defaults with FAME_* variables)")
	logJSON := fs.Bool("log-json", false, "log as JSON instead of text")
	addrFile := fs.String("addr-file", "", "write the address actually listened on to this file (useful with port 0)")
	tlsCert := fs.String("tls-cert", os.Getenv("FAME_TLS_CERT_FILE"), "serve WSS/HTTPS with this certificate chain (PEM); re-read on reload")
	tlsKey := fs.String("tls-key", os.Getenv("FAME_TLS_KEY_FILE"), "private key for -tls-cert (PEM)")
	watch := fs.Bool("watch", true, "reload when the config file (or the TLS, grants or CA file) changes; SIGHUP always reloads")
	debounce := fs.Duration("reload-debounce", defaultReloadDebounce, "quiet time after a file change before the reload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	src := configSource{path: *path, env: config.OSEnv, tlsCert: *tlsCert, tlsKey: *tlsKey, logJSON: *logJSON}
	c, err := src.check()
	if err != nil {
		return err
	}
	opts := c.opts
	level := new(slog.LevelVar)
	lv, _ := sentinel.ParseLogLevel(opts.LogLevel) // checked above
	level.Set(lv)
	log := newLogger(opts.LogFormat, level)
	for _, k := range c.ignored {
		// Not fatal (a misspelt known key is), but never silent: the operator may have
		// meant something by it.
		log.Warn("config: unknown key ignored", "file", *path, "key", k.Path, "line", k.Line)
	}
	tracer, err := tracing.Setup(ctx, opts.Tracing)
	if err != nil {
		return err
	}
	if tracer != nil {
		log.Info("tracing on", "otlp", opts.Tracing.URL(), "sample_ratio", opts.Tracing.Ratio(), "service", opts.Tracing.ServiceName)
		defer func() {
			// The spans still batched are exported before exit, within a bound.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tracer.Shutdown(sctx); err != nil {
				log.Warn("tracing: flushing spans at exit failed", "err", err)
			}
		}()
	}
	extra := []sentinel.Option{sentinel.WithLogger(log), sentinel.WithLogLevel(level), sentinel.WithTracer(tracer)}
	var certs *certStore
	if c.cert != nil {
		certs = &certStore{}
		certs.cur.Store(c.cert)
	}
	gwDial := &selfDial{certs: certs}
	var gw *gateway.Gateway
	if opts.Gateway.Enabled {
		if gw, err = newGateway(opts, gwDial, log); err != nil {
			return err
		}
		defer gw.Close()
		extra = append(extra, sentinel.WithRoute(gateway.DefaultBasePath+"/", gw.Handler()))
	}
	var member *cluster.Member
	var clusterMx *cluster.Metrics
	if opts.Cluster.Enabled() {
		// The membership outlives serving: closed (bye, directory withdrawn, lame duck) after
		// the drain, so calls in flight still reach replicas on the other sentinels.
		clusterMx = cluster.NewMetrics()
		if member, err = cluster.Open(opts.Cluster, log, clusterMx); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		defer func() {
			if err := member.Close(); err != nil {
				log.Warn("cluster: leaving", "err", err)
			}
		}()
		log.Info("cluster joined", "cluster", opts.Cluster.Name, "embedded", opts.Cluster.Embedded(),
			"replicas", opts.Cluster.Replicas)
		extra = append(extra, sentinel.WithCluster(sentinel.ClusterLink{Store: member.Store, Bus: member.Bus, Directory: member.Directory, Grace: opts.Cluster.Grace,
			Rate: cluster.NewRateShare(member.Conn, member.Config)}))
	}
	s, err := sentinel.New(opts, extra...)
	if err != nil {
		return err
	}
	if clusterMx != nil {
		for _, c := range clusterMx.Collectors() {
			if err := s.Registerer().Register(c); err != nil {
				return fmt.Errorf("cluster metrics: %w", err)
			}
		}
	}
	if gw != nil {
		if err := gw.Register(s.Registerer()); err != nil {
			return err
		}
		log.Info("HTTP gateway enabled", "path", gateway.DefaultBasePath, "allowed_origins", opts.Gateway.AllowedOrigins, "body_limit", opts.Gateway.BodyLimit, "tls", certs != nil)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	gwDial.addr.Store(selfAddr(l))
	if certs != nil {
		// WebSocket upgrades need HTTP/1.1, so ALPN offers only that. The certificate is read
		// per handshake, so a reload rotates it without a restart.
		l = tls.NewListener(l, &tls.Config{GetCertificate: certs.get, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("addr-file: %w", err)
		}
	}
	rctx, stopReload := context.WithCancel(context.Background())
	reloadDone := make(chan struct{})
	r := &reloader{src: src, s: s, certs: certs, log: log}
	// Owned by runSentinel: ends when serving has ended (stopReload), before it returns.
	go func() {
		defer close(reloadDone)
		r.run(rctx, hup, src.watched(opts), *watch, *debounce)
	}()
	defer func() { stopReload(); <-reloadDone }()
	return serveDraining(ctx, s, l, log)
}

// serveDraining serves until the first SIGTERM or SIGINT (ctx), which starts a graceful drain
// (sentinel/drain.go): calls in flight are answered, new ones nacked DRAINING, and Serve
// returns nil (exit 0) once nothing is in flight or at drain_timeout. A second signal during
// the drain stops at once. POST /admin/drain ends Serve the same way.
func serveDraining(ctx context.Context, s *sentinel.Sentinel, l net.Listener, log *slog.Logger) error {
	serveCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{})
	// Owned by serveDraining: ends when Serve has returned.
	go func() {
		select {
		case <-served:
			return
		case <-ctx.Done():
		}
		// Registered before the drain starts, so that a second signal is never lost.
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		log.Info("signal received: draining (a second signal stops at once)")
		s.StartDrain("signal")
		select {
		case <-served:
		case <-again:
			log.Warn("second signal: stopping without waiting for the drain")
			cancel()
		}
	}()
	err := s.Serve(serveCtx, l)
	close(served)
	return err
}

// newLogger logs to stderr at the level of lv (which a reload may change).
func newLogger(format string, lv slog.Leveler) *slog.Logger {
	ho := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, ho))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, ho))
}

// levelOf reads a log level for the services' -log-level flag; an unknown one is info.
func levelOf(level string) slog.Level {
	lv, err := sentinel.ParseLogLevel(level)
	if err != nil {
		return slog.LevelInfo
	}
	return lv
}
