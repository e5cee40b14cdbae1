package main

// The admission services (fame oauth2, fame welcome, fame ca) share one way of being served:
// the flags below, /healthz, optional TLS from the dev PKI, slog logs and a graceful stop on
// SIGTERM/SIGINT (main's context).

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// shutdownGrace bounds how long in-flight requests may take once a stop is requested.
const shutdownGrace = 5 * time.Second

// serveFlags are the flags every admission service accepts.
type serveFlags struct {
	listen   string
	tlsCert  string
	tlsKey   string
	addrFile string
	logJSON  bool
	logLevel string
}

// register adds the flags to fs; defListen is the service's reference address.
func (f *serveFlags) register(fs *flag.FlagSet, defListen string) {
	fs.StringVar(&f.listen, "listen", defListen, "address to listen on")
	fs.StringVar(&f.tlsCert, "tls-cert", os.Getenv("FAME_TLS_CERT_FILE"), "serve HTTPS with this certificate chain (PEM; see 'fame ca server-cert')")
	fs.StringVar(&f.tlsKey, "tls-key", os.Getenv("FAME_TLS_KEY_FILE"), "private key for -tls-cert (PEM)")
	fs.StringVar(&f.addrFile, "addr-file", "", "write the address actually listened on to this file (useful with port 0)")
	fs.BoolVar(&f.logJSON, "log-json", false, "log as JSON instead of text")
	fs.StringVar(&f.logLevel, "log-level", envOr("FAME_LOG_LEVEL", "info"), "debug, info, warn or error")
}

func (f *serveFlags) logger(service string) *slog.Logger {
	format := "text"
	if f.logJSON {
		format = "json"
	}
	return newLogger(format, levelOf(f.logLevel)).With("service", service)
}

// tlsConfig loads the certificate pair, or returns nil for plain HTTP.
func (f *serveFlags) tlsConfig() (*tls.Config, error) {
	switch {
	case f.tlsCert == "" && f.tlsKey == "":
		return nil, nil
	case f.tlsCert == "" || f.tlsKey == "":
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// serveHTTP serves h (plus /healthz) until ctx is done, then drains for up to shutdownGrace.
func serveHTTP(ctx context.Context, service string, h http.Handler, f *serveFlags, log *slog.Logger) error {
	tc, err := f.tlsConfig()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if f.addrFile != "" {
		if err := os.WriteFile(f.addrFile, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
			_ = l.Close()
			return fmt.Errorf("addr-file: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           withHealth(service, accessLog(h, log)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tc,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			errc <- srv.ServeTLS(l, "", "")
		} else {
			errc <- srv.Serve(l)
		}
	}()
	log.Info(service+" listening", "addr", l.Addr().String(), "scheme", scheme)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info(service + " shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// withHealth answers GET /healthz in front of the service's own routes.
func withHealth(service string, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","service":"`+service+`"}`+"\n")
	})
	mux.Handle("/", h)
	return mux
}

// statusRecorder remembers the status code for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// accessLog logs each request at debug level and every refusal (4xx/5xx) at info, so a
// misconfigured client is visible without turning on debug.
func accessLog(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		lvl := slog.LevelDebug
		if rec.status >= 400 {
			lvl = slog.LevelInfo
		}
		log.Log(r.Context(), lvl, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// getenv adapts os.Getenv to the admission packages' ConfigFromEnv.
func getenv(k string) string { return os.Getenv(k) }
