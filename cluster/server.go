package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ErrNotReady is returned when the embedded server does not accept
// connections in time.
var ErrNotReady = errors.New("cluster: embedded NATS server not ready")

// Embedded is a nats-server running inside the sentinel process: routes to
// the other sentinels' servers and JetStream in the data directory. Every
// route and client link is mutual TLS with certificates from the stack CA
// and authenticated (user/password for routes; user/password or nkey for
// clients), so a process without both can neither join the cluster nor
// read or write anything in it. The sentinel connects in-process.
type Embedded struct {
	cfg Config
	srv *server.Server
	log *slog.Logger
}

// StartEmbedded starts the server of cfg (which must be Embedded) and waits
// until it accepts connections. It does not wait for the routes or the
// JetStream meta leader: the binding store binds its buckets in the
// background once the cluster has quorum.
func StartEmbedded(cfg Config, log *slog.Logger, m *Metrics) (*Embedded, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if !cfg.Embedded() {
		return nil, fmt.Errorf("%w: no listen address: not an embedded cluster", ErrConfig)
	}
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats server: %w", err)
	}
	log = log.With("component", "cluster-nats", "cluster", cfg.Name, "server", cfg.SentinelID)
	srv.SetLoggerV2(slogAdapter{l: log, m: m}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: %s after 10s", ErrNotReady, cfg.SentinelID)
	}
	routeAddr := "none (cluster of one)"
	if a := srv.ClusterAddr(); a != nil {
		routeAddr = a.String()
	}
	log.Info("embedded NATS started", "routes_listen", routeAddr,
		"client_listen", srv.Addr().String(), "seeds", len(cfg.Routes), "replicas", cfg.Replicas)
	return &Embedded{cfg: cfg, srv: srv, log: log}, nil
}

func serverOptions(cfg Config) (*server.Options, error) {
	tc, err := TLSConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen: %w", ErrConfig, err)
	}
	chost, cport, err := splitHostPort(cfg.ClientListen)
	if err != nil {
		return nil, fmt.Errorf("%w: client_listen: %w", ErrConfig, err)
	}
	routes := make([]*url.URL, 0, len(cfg.Routes))
	others := 0
	for _, r := range cfg.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("%w: route %q: %w", ErrConfig, r, err)
		}
		if u.Host != cfg.Listen {
			others++
		}
		u.Scheme = "nats-route"
		u.User = url.UserPassword(cfg.Auth.User, cfg.Auth.Password)
		routes = append(routes, u)
	}
	o := &server.Options{
		ServerName: cfg.SentinelID,
		Host:       chost,
		Port:       cport,
		NoSigs:     true, // the sentinel owns the process's signals
		TLSConfig:  tc,
		TLSVerify:  true,
		TLSTimeout: 2,
		Cluster: server.ClusterOpts{
			Name:        cfg.Name,
			Host:        host,
			Port:        port,
			Username:    cfg.Auth.User,
			Password:    cfg.Auth.Password,
			TLSConfig:   tc.Clone(),
			TLSTimeout:  2,
			AuthTimeout: 2,
		},
		Routes:                 routes,
		JetStream:              true,
		StoreDir:               cfg.DataDir,
		LameDuckDuration:       cfg.LameDuck,
		LameDuckGracePeriod:    min(cfg.LameDuck/2, 250*time.Millisecond),
		DisableJetStreamBanner: true,
	}
	if others == 0 {
		// A cluster of one: clustered JetStream cannot bootstrap on a route
		// to itself, so the server runs JetStream standalone (R1) with no
		// route port. Growing it later means a restart with seeds.
		o.Cluster = server.ClusterOpts{}
		o.Routes = nil
	}
	if cfg.Auth.NkeySeedFile != "" {
		_, pub, err := loadNkey(cfg.Auth.NkeySeedFile)
		if err != nil {
			return nil, err
		}
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	} else {
		o.Users = []*server.User{{Username: cfg.Auth.User, Password: cfg.Auth.Password}}
	}
	return o, nil
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q out of range", p)
	}
	if n == 0 {
		n = server.RANDOM_PORT // nats-server reads 0 as "the default port"
	}
	return h, n, nil
}

func loadNkey(file string) (nkeys.KeyPair, string, error) {
	seed, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("cluster: nkey seed: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return nil, "", fmt.Errorf("cluster: nkey seed %s: %w", file, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, "", fmt.Errorf("cluster: nkey seed %s: %w", file, err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return nil, "", fmt.Errorf("cluster: nkey seed %s is not a user seed (SU…)", file)
	}
	return kp, pub, nil
}

// RouteAddr is the address the route port listens on (host:port); "" for a
// cluster of one, which has no route port.
func (e *Embedded) RouteAddr() string {
	if a := e.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// ClientURL is the tls:// URL of the client port.
func (e *Embedded) ClientURL() string {
	return "tls://" + e.srv.Addr().String()
}

// Routes is the number of routes to other servers (health, tests).
func (e *Embedded) Routes() int { return e.srv.NumRoutes() }

// RoutedServers returns the names (sentinel ids) of the servers this one
// has a route to right now: the liveness evidence of Bus.SetRouteProbe.
// Called a few times a second; it lists a few routes under the server's
// lock.
func (e *Embedded) RoutedServers() map[string]bool {
	rz, err := e.srv.Routez(nil)
	if err != nil || rz == nil {
		return map[string]bool{}
	}
	out := make(map[string]bool, len(rz.Routes))
	for _, r := range rz.Routes {
		if r.RemoteName != "" {
			out[r.RemoteName] = true
		}
	}
	return out
}

// Close enters lame-duck mode, which moves every Raft leadership this
// server holds to another server before it stops, so writes elsewhere do
// not stall for an election; then it waits for the shutdown. Close the
// stores and the bus first: their connection is a client lame-duck waits for.
func (e *Embedded) Close() {
	start := time.Now()
	e.srv.LameDuckShutdown()
	e.srv.WaitForShutdown()
	e.log.Info("embedded NATS stopped (lame duck)", "took", time.Since(start))
}

// Kill stops the server at once, without moving leadership: what a crash
// costs the others (tests, and a sentinel that must exit now).
func (e *Embedded) Kill() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Connect opens the sentinel's NATS connection: in-process to the embedded
// server when emb is not nil, else to cfg.URL with mutual TLS. Credentials
// are cfg.Auth's. The connection reconnects for ever; nats.go buffers
// publishes while it does (bounded), so a publish never waits on the network.
func Connect(cfg Config, emb *Embedded, log *slog.Logger) (*nats.Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	log = log.With("component", "cluster-conn", "cluster", cfg.Name)
	opts := []nats.Option{
		nats.Name("fame-sentinel-" + cfg.SentinelID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("cluster connection lost", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("cluster connection restored", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Error("cluster connection error", "subject", subj, "err", err)
		}),
	}
	if cfg.Auth.NkeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.Auth.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: nkey seed %s: %w", cfg.Auth.NkeySeedFile, err)
		}
		opts = append(opts, o)
	} else {
		opts = append(opts, nats.UserInfo(cfg.Auth.User, cfg.Auth.Password))
	}
	url := cfg.URL
	if emb != nil {
		opts = append(opts, nats.InProcessServer(emb.srv))
		url = ""
	} else {
		tc, err := TLSConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect %s: %w", cfg.Name, err)
	}
	return nc, nil
}

// slogAdapter routes nats-server's log lines to slog. nats-server has no
// hook for refused connections, but it logs each one with the peer's
// address ("127.0.0.1:4711 - cid:7 - authentication error", "… - rid:3 -
// TLS handshake error: …"): those lines are counted by link and reason.
type slogAdapter struct {
	l *slog.Logger
	m *Metrics
}

func (a slogAdapter) count(msg string) {
	reason := ""
	switch {
	case strings.Contains(msg, "authentication error"), strings.Contains(msg, "Authorization Violation"):
		reason = "auth"
	case strings.Contains(msg, "TLS handshake error"), strings.Contains(msg, "TLS route handshake error"):
		reason = "tls"
	default:
		return
	}
	link := "client"
	if strings.Contains(msg, " - rid:") {
		link = "route"
	}
	a.m.refusal(link, reason)
}

func (a slogAdapter) Noticef(f string, v ...any) { a.l.Info(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warnf(f string, v ...any) {
	m := fmt.Sprintf(f, v...)
	if strings.HasPrefix(m, "Plaintext passwords detected") {
		// The sentinel dials routes with the password, so it holds it in
		// plain anyway; a bcrypt copy for the accepting side would add a
		// hash per connection and protect nothing.
		a.l.Debug(m)
		return
	}
	a.l.Warn(m)
}
func (a slogAdapter) Fatalf(f string, v ...any) { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Errorf(f string, v ...any) {
	m := fmt.Sprintf(f, v...)
	a.count(m)
	a.l.Error(m)
}
func (a slogAdapter) Debugf(f string, v ...any) { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Tracef(f string, v ...any) { a.l.Debug(fmt.Sprintf(f, v...)) }
