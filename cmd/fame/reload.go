package main

// Hot reload of `fame sentinel`: on SIGHUP and when its files change (the config file, the TLS
// certificate and key, the admission grants file, the CA bundle) the sentinel re-reads them,
// checks them exactly as `fame validate` does (checkConfig) and puts them in force with
// sentinel.Reload, without dropping a connection. A file that does not check, or a change of a
// setting that needs a restart, is refused with every problem listed and the running
// configuration stays in force.
//
// The environment is the one the process started with: a process's environment cannot be
// changed from outside, so a reload re-reads the files with the same FAME_* values (which
// still win over the file, and still fill ${env:...}). Settings that only a variable gives
// change by editing the files the variables name (FAME_ADMISSION_GRANTS_FILE, FAME_CA_CERTS as
// a path, -tls-cert/-tls-key) or by a restart.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/sentinel"
)

// defaultReloadDebounce: editors write a file in several steps (truncate and write, or write a
// temporary file and rename it), Kubernetes swaps a ConfigMap's ..data symlink in two renames;
// a reload waits until the directory has been quiet this long, so it reads the finished file.
const defaultReloadDebounce = 250 * time.Millisecond

// configSource is what `fame sentinel` and `fame validate` check: the config file (or the
// built-in default), the environment, and the TLS pair when one is given.
type configSource struct {
	path            string
	env             config.Getenv
	tlsCert, tlsKey string
	logJSON         bool // -log-json: logging.format json, whatever the file says
}

// checked is a configuration that passed every check.
type checked struct {
	opts    sentinel.Options
	ignored []config.UnknownKey
	cert    *tls.Certificate // nil without TLS
	// partial are the options as read when the check failed (nil when nothing could be
	// read); with ConfigError.Incomplete unset they are what the file says.
	partial *sentinel.Options
}

// check loads and checks src: the file (every problem of it, sentinel.Load), the files it
// names (sentinel.Check) and the TLS pair. It is the one check of `fame validate`, the start
// and every reload, so the three refuse exactly the same files; all problems come back in one
// *sentinel.ConfigError.
func (src configSource) check() (checked, error) {
	var c checked
	var problems []string
	var unknown *config.UnknownKeysError
	var incomplete bool
	if src.path != "" {
		// An empty file would run on the built-in defaults, and it is what a reload sees of a
		// file caught between truncate and write: refused, at start as on reload (to run on
		// the defaults, give no -c).
		if b, err := os.ReadFile(src.path); err == nil && len(bytes.TrimSpace(b)) == 0 {
			return c, &sentinel.ConfigError{File: src.path, Problems: []string{"the file is empty (half written?); for the built-in defaults give no -c"}}
		}
	}
	opts, ignored, err := sentinel.Load(src.path, src.env)
	c.ignored = ignored
	var ce *sentinel.ConfigError
	switch {
	case errors.As(err, &ce):
		problems = append(problems, ce.Problems...)
		unknown = ce.Unknown
		incomplete = ce.Incomplete
	case err != nil:
		return c, err // not YAML at all, or unreadable: nothing more to check
	}
	if src.logJSON {
		opts.LogFormat = "json"
	}
	if err := sentinel.Check(opts); errors.As(err, &ce) {
		problems = append(problems, ce.Problems...)
	} else if err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case src.tlsCert == "" && src.tlsKey == "":
	case src.tlsCert == "" || src.tlsKey == "":
		problems = append(problems, "-tls-cert and -tls-key (FAME_TLS_CERT_FILE, FAME_TLS_KEY_FILE) go together")
	default:
		pair, err := tls.LoadX509KeyPair(src.tlsCert, src.tlsKey)
		if err != nil {
			problems = append(problems, "tls: "+err.Error())
		} else {
			c.cert = &pair
		}
	}
	if len(problems) > 0 {
		c.partial = &opts
		return c, &sentinel.ConfigError{Problems: problems, File: src.path, Unknown: unknown, Incomplete: incomplete}
	}
	c.opts = opts
	return c, nil
}

// watched lists the files a reload re-reads, for the watcher: the config file and the files
// the configuration names.
func (src configSource) watched(opts sentinel.Options) []string {
	var files []string
	for _, f := range []string{src.path, src.tlsCert, src.tlsKey, opts.Admission.GrantsFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	if b := opts.TrustBundle; b != "" && !strings.HasPrefix(strings.TrimSpace(b), "-----BEGIN") {
		files = append(files, b)
	}
	return files
}

// certStore serves the TLS certificate in force: tls.Config.GetCertificate reads it with one
// atomic load per handshake, and a reload swaps it, so new connections get the new certificate
// while established ones keep theirs.
type certStore struct {
	cur atomic.Pointer[tls.Certificate]
}

func (c *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }

// serial is the leaf's serial number, for the log.
func certSerial(c *tls.Certificate) string {
	if c == nil || len(c.Certificate) == 0 {
		return ""
	}
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return ""
		}
	}
	return leaf.SerialNumber.Text(16)
}

func sameCert(a, b *tls.Certificate) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Certificate) != len(b.Certificate) {
		return false
	}
	for i := range a.Certificate {
		if string(a.Certificate[i]) != string(b.Certificate[i]) {
			return false
		}
	}
	return true
}

// reloader re-reads and applies the configuration of a running sentinel.
type reloader struct {
	src   configSource
	s     *sentinel.Sentinel
	certs *certStore // nil without TLS
	log   *slog.Logger
	last  [32]byte // fingerprint of the watched files at the last reload attempt
}

// reload is one attempt; source says what asked for it (signal, file change). It returns the
// error of a refused reload (already logged and counted).
func (r *reloader) reload(source string) error {
	c, err := r.src.check()
	if err == nil && (c.cert == nil) != (r.certs == nil) {
		err = &sentinel.RestartRequiredError{Keys: []string{"-tls-cert/-tls-key (TLS on or off)"}}
	}
	var ce *sentinel.ConfigError
	if errors.As(err, &ce) && !ce.Incomplete && c.partial != nil {
		// Every problem: the file's own, and the restart-only settings it would change.
		if keys := r.s.RestartKeys(*c.partial); len(keys) > 0 {
			ce.Problems = append(ce.Problems, "these settings need a restart: "+strings.Join(keys, ", "))
		}
	}
	if err != nil {
		r.s.RefuseReload(source, err)
		return err
	}
	for _, k := range c.ignored {
		r.log.Warn("config: unknown key ignored", "file", r.src.path, "key", k.Path, "line", k.Line)
	}
	var keys []string
	var rotate func()
	if r.certs != nil && !sameCert(r.certs.cur.Load(), c.cert) {
		old := certSerial(r.certs.cur.Load())
		keys = []string{"-tls-cert"}
		rotate = func() {
			r.certs.cur.Store(c.cert)
			r.log.Info("tls certificate rotated: new connections get the new one", "source", source,
				"old_serial", old, "serial", certSerial(c.cert), "file", r.src.tlsCert)
		}
	}
	if _, err := r.s.ReloadWith(c.opts, source, keys, rotate); err != nil {
		return err // logged and counted by Reload
	}
	return nil
}

// fingerprint hashes the watched files' contents (or their read errors), so that an event
// that left them unchanged (an editor's swap file, a touch) does not reload.
func fingerprint(files []string) [32]byte {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(h, "%s\x00error %v\x00", f, err)
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// run reloads on every SIGHUP (hup) and, when watch, on every change of the watched files,
// until ctx ends. It owns the watcher and the debouncer, and returns when both have stopped.
func (r *reloader) run(ctx context.Context, hup <-chan os.Signal, files []string, watch bool, debounce time.Duration) {
	r.last = fingerprint(files)
	changed := make(chan struct{}, 1)
	if watch && len(files) > 0 {
		w, err := newDirWatcher(files, r.log)
		if err != nil {
			// Not fatal: SIGHUP still reloads; but never silent.
			r.log.Error("config watch off: SIGHUP still reloads", "err", err)
		} else {
			debounced := make(chan struct{})
			// Owned by run: ends with ctx (or the watcher's close); run waits for it.
			go func() {
				defer close(debounced)
				debounceEvents(ctx, w.events, debounce, changed)
			}()
			defer func() { w.close(); <-debounced }()
			r.log.Info("watching the configuration for changes", "files", files, "debounce", debounce)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("SIGHUP: reloading the configuration")
			r.last = fingerprint(files)
			_ = r.reload("signal")
		case <-changed:
			fp := fingerprint(files)
			if fp == r.last {
				r.log.Debug("config files touched but unchanged: no reload")
				continue
			}
			r.last = fp
			r.log.Info("config file changed: reloading", "files", files)
			_ = r.reload("file change")
		}
	}
}

// debounceEvents sends on out (without blocking; one pending signal is enough) once in has
// been quiet for d after an event, until ctx ends or in is closed.
func debounceEvents(ctx context.Context, in <-chan struct{}, d time.Duration, out chan<- struct{}) {
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-in:
			if !ok {
				return
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}
}

// dirWatcher watches the directories of the files, not the files: an editor that writes a new
// file and renames it over the old one, or Kubernetes swapping a ConfigMap's ..data symlink,
// replaces the inode a file watch would be on. An event counts when it names one of the files
// or one of Kubernetes' ..-prefixed entries.
type dirWatcher struct {
	w      *fsnotify.Watcher
	events chan struct{}
	done   chan struct{}
}

func newDirWatcher(files []string, log *slog.Logger) (*dirWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("fsnotify: %w", err)
	}
	names := map[string]map[string]bool{} // dir -> base names
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			abs = f
		}
		dir, base := filepath.Dir(abs), filepath.Base(abs)
		if names[dir] == nil {
			names[dir] = map[string]bool{}
			if err := w.Add(dir); err != nil {
				_ = w.Close()
				return nil, fmt.Errorf("watch %s: %w", dir, err)
			}
		}
		names[dir][base] = true
	}
	dw := &dirWatcher{w: w, events: make(chan struct{}, 1), done: make(chan struct{})}
	// Owned by dirWatcher: ends when close closes the fsnotify watcher (its channels close).
	go func() {
		defer close(dw.done)
		defer close(dw.events)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				base := filepath.Base(ev.Name)
				if !names[filepath.Dir(ev.Name)][base] && !strings.HasPrefix(base, "..") {
					continue
				}
				select {
				case dw.events <- struct{}{}:
				default:
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch error", "err", err)
			}
		}
	}()
	return dw, nil
}

func (d *dirWatcher) close() {
	_ = d.w.Close()
	<-d.done
}

// notifyHUP makes SIGHUP a reload request instead of the default (terminate the process). It
// is installed before the sentinel listens, so that an early SIGHUP cannot kill it.
func notifyHUP() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}
