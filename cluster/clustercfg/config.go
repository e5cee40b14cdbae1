// Package clustercfg is the configuration of a sentinel's cluster membership, kept apart from
// package cluster so that config/ (and every program that loads a config, the examples
// included) can parse it without linking nats-server. Package cluster aliases its types.
package clustercfg

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultHeartbeat    = time.Second
	DefaultMissedBeats  = 3
	DefaultDirectoryTTL = 10 * time.Second
	DefaultBindingTTL   = 2 * time.Hour
	DefaultCacheMax     = 1 << 20
	DefaultWriteTimeout = 10 * time.Second
	DefaultLameDuck     = 5 * time.Second
	// DefaultGrace is how long a lost replica keeps its bindings: one that
	// re-attaches (to any sentinel) within it serves its sessions again.
	DefaultGrace        = 2 * time.Second
	DefaultClientListen = "127.0.0.1:0"
	// DataOff as DataListen turns the direct data path off.
	DataOff = "off"
	// MaxReplicas is the JetStream replication the KV buckets ask for at most:
	// R = min(MaxReplicas, cluster size).
	MaxReplicas = 3
)

// ErrConfig is wrapped by every Config.Validate error.
var ErrConfig = errors.New("cluster: invalid config")

// Config describes one sentinel's membership of a cluster. Exactly one of
// Listen (embedded NATS with routes to Routes) and URL (a NATS the operator
// runs) is set. The zero Config means "no cluster" (Enabled reports false):
// the sentinel then behaves exactly as a single sentinel.
type Config struct {
	// Name of the cluster: the NATS cluster name, the first subject token
	// (fame.<Name>.…) and the KV bucket prefix. [A-Za-z0-9_-]{1,32}.
	Name string
	// SentinelID is this sentinel's id: the NATS server name and its subject
	// token (fame.<Name>.s.<SentinelID>). [A-Za-z0-9_-]{1,64}.
	SentinelID string

	// Embedded server: Listen is host:port of the route (cluster) port,
	// Routes the seed URLs (nats-route://host:port, this node's own may be
	// among them), DataDir the JetStream store directory. ClientListen is
	// the client port (DefaultClientListen: loopback, any port); the
	// sentinel itself connects in-process, the port exists for operators'
	// tools and for lame-duck mode, which only runs with a client listener.
	Listen       string
	Routes       []string
	ClientListen string
	DataDir      string

	// URL of an external NATS (nats:// or tls://, comma-separated seeds).
	URL string

	// DataListen is host:port of the direct data path (peer links: each
	// sentinel's envelopes for a peer on one mutual-TLS connection instead of
	// through NATS); DataOff turns it off. Empty: with an embedded server
	// whose Listen host is a specific address (or with DataAdvertise set),
	// that host on any port; else off. DataAdvertise is what peers dial
	// (host or host:port; a host alone takes the bound port), needed when
	// DataListen's host is unspecified (0.0.0.0).
	DataListen    string
	DataAdvertise string

	// Replicas is R, the JetStream replication of the KV buckets. 0 means
	// min(MaxReplicas, cluster size), the size of an embedded cluster being
	// this node plus the distinct route seeds other than Listen (so every
	// node should list every seed); with an external NATS 0 means 1, since
	// its size is not known here: set it to min(3, size of that cluster).
	Replicas int

	// TLS: certificate and key of this sentinel (server and client side)
	// and the CA bundle peers must chain to. Required for both modes.
	TLS TLSFiles
	// Auth: the credentials every client link and route presents.
	Auth Auth

	Heartbeat    time.Duration // DefaultHeartbeat
	MissedBeats  int           // DefaultMissedBeats
	DirectoryTTL time.Duration // DefaultDirectoryTTL: per-key TTL of replica directory entries
	BindingTTL   time.Duration // DefaultBindingTTL: KV bucket max age of bindings
	CacheMax     int           // DefaultCacheMax: local binding LRU bound
	WriteTimeout time.Duration // DefaultWriteTimeout: one background KV write
	LameDuck     time.Duration // DefaultLameDuck: lame-duck duration on Close
	Grace        time.Duration // DefaultGrace: a lost replica's bindings wait this long before re-pinning
}

// TLSFiles names PEM files.
type TLSFiles struct {
	Cert, Key, CA string
}

// Auth holds the NATS credentials of the cluster. User and Password
// authenticate routes (embedded) and client links; NkeySeedFile, when set,
// authenticates client links with an nkey instead of the password (routes
// cannot use nkeys, so the embedded server still needs User and Password).
type Auth struct {
	User, Password string
	NkeySeedFile   string
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	idRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Enabled reports whether a cluster is configured at all.
func (c Config) Enabled() bool { return c.Listen != "" || c.URL != "" }

// DataPath reports whether the direct data path (peer links) is on.
func (c Config) DataPath() bool { return c.DataListen != "" && c.DataListen != DataOff }

// Embedded reports whether this sentinel runs the NATS server itself.
func (c Config) Embedded() bool { return c.Listen != "" }

// Normalize fills defaults and validates; it returns the effective config.
func (c Config) Normalize() (Config, error) {
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.MissedBeats <= 0 {
		c.MissedBeats = DefaultMissedBeats
	}
	if c.DirectoryTTL <= 0 {
		c.DirectoryTTL = DefaultDirectoryTTL
	}
	if c.BindingTTL <= 0 {
		c.BindingTTL = DefaultBindingTTL
	}
	if c.CacheMax <= 0 {
		c.CacheMax = DefaultCacheMax
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.LameDuck <= 0 {
		c.LameDuck = DefaultLameDuck
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	if c.Embedded() && c.ClientListen == "" {
		c.ClientListen = DefaultClientListen
	}
	if c.Replicas == 0 {
		c.Replicas = c.defaultReplicas()
	}
	if c.DataListen == "" && c.Embedded() {
		if host, _, err := net.SplitHostPort(c.Listen); err == nil {
			if ip := net.ParseIP(host); c.DataAdvertise != "" || (host != "" && (ip == nil || !ip.IsUnspecified())) {
				c.DataListen = net.JoinHostPort(host, "0")
			}
		}
	}
	return c, c.Validate()
}

// defaultReplicas counts this node plus the distinct seeds that are not
// this node's own route address.
func (c Config) defaultReplicas() int {
	if !c.Embedded() {
		return 1
	}
	seen := map[string]bool{}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || u.Host == c.Listen {
			continue
		}
		seen[u.Host] = true
	}
	return min(MaxReplicas, 1+len(seen))
}

// Validate lists every problem of an enabled config (nil for a disabled
// one). Every error wraps ErrConfig.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("%w: "+f, append([]any{ErrConfig}, a...)...)) }
	if !nameRE.MatchString(c.Name) {
		bad("name %q must match %s", c.Name, nameRE)
	}
	if !idRE.MatchString(c.SentinelID) {
		bad("sentinel id %q must match %s (a fixed node id is required in a cluster)", c.SentinelID, idRE)
	}
	if c.Listen != "" && c.URL != "" {
		bad("listen and url are exclusive: embed a NATS server or use an external one")
	}
	if c.Embedded() {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen %q: %v", c.Listen, err)
		}
		if _, _, err := net.SplitHostPort(c.ClientListen); err != nil {
			bad("client_listen %q: %v", c.ClientListen, err)
		}
		for _, r := range c.Routes {
			if u, err := url.Parse(r); err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats" && u.Scheme != "tls") {
				bad("route %q: want nats-route://host:port", r)
			} else if u.User != nil {
				bad("route %q: credentials belong in auth, not in the URL", r)
			}
		}
		if c.DataDir == "" {
			bad("data_dir is required for the embedded JetStream")
		}
		if c.Auth.User == "" || c.Auth.Password == "" {
			bad("auth user and password are required: routes authenticate with them")
		}
	} else {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") {
			bad("url %q: want nats://host:port or tls://host:port", c.URL)
		}
		if (c.Auth.User == "" || c.Auth.Password == "") && c.Auth.NkeySeedFile == "" {
			bad("auth: user and password or an nkey seed file are required")
		}
	}
	if c.DataPath() {
		host, _, err := net.SplitHostPort(c.DataListen)
		switch ip := net.ParseIP(host); {
		case err != nil:
			bad("data_listen %q: %v", c.DataListen, err)
		case c.DataAdvertise == "" && (host == "" || (ip != nil && ip.IsUnspecified())):
			bad("data_listen %q has no specific host: set data_advertise to the name peers dial", c.DataListen)
		}
		if c.Auth.User == "" || c.Auth.Password == "" {
			bad("data_listen: the direct data path authenticates peers with the cluster user and password; set them or data_listen: off")
		}
	}
	if c.TLS.Cert == "" || c.TLS.Key == "" || c.TLS.CA == "" {
		bad("tls cert, key and ca files are required: the cluster is inside the trust boundary")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("replicas %d out of range 1..5", c.Replicas)
	}
	if c.MissedBeats < 1 {
		bad("missed_beats must be at least 1")
	}
	return errors.Join(errs...)
}

// ValidID reports whether id can be a sentinel id in a cluster (a NATS subject token and
// server name).
func ValidID(id string) bool { return idRE.MatchString(id) }
