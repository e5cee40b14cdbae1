package cluster

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Member is one sentinel's membership of a cluster: the embedded server
// (when Config.Listen is set), the connection, the binding store, the bus
// and the replica directory, opened and closed in the right order.
type Member struct {
	Config    Config
	Embedded  *Embedded // nil with an external NATS
	Conn      *nats.Conn
	Store     *KVStore
	Bus       *NATSBus
	Directory *Directory
	Keys      *KeyDirectory // the public keys the sentinels vouch for (signing profiles)
	Metrics   *Metrics
	log       *slog.Logger
}

// Open joins the cluster of cfg. It returns once the server (if embedded)
// accepts connections and the connection is up; the KV buckets bind in the
// background (Store.Ready, Directory.Ready), so a sentinel starting before
// the cluster has quorum serves at once with its local view.
func Open(cfg Config, log *slog.Logger, m *Metrics) (_ *Member, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg, err = cfg.Normalize(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("%w: no cluster configured", ErrConfig)
	}
	mb := &Member{Config: cfg, Metrics: m, log: log}
	defer func() {
		if err != nil {
			mb.Close()
		}
	}()
	if cfg.Embedded() {
		if mb.Embedded, err = StartEmbedded(cfg, log, m); err != nil {
			return nil, err
		}
	}
	if mb.Conn, err = Connect(cfg, mb.Embedded, log); err != nil {
		return nil, err
	}
	js, err := jetstream.New(mb.Conn)
	if err != nil {
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	o := StoreOptions{Logger: log, Metrics: m}
	if mb.Bus, err = NewBus(mb.Conn, cfg, o); err != nil {
		return nil, err
	}
	if mb.Embedded != nil {
		// Server names are sentinel ids: a closed route names the peer.
		mb.Bus.SetRouteProbe(mb.Embedded.RoutedServers)
	}
	if cfg.DataPath() {
		tc, err := TLSConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		if err := mb.Bus.EnableLinks(tc); err != nil {
			return nil, err
		}
	} else {
		log.Info("cluster direct data path off: envelopes between sentinels go through NATS",
			"why", "data_listen is off, or has no specific host and no data_advertise")
	}
	if mb.Store, err = NewKVStore(js, cfg, o); err != nil {
		return nil, err
	}
	if mb.Directory, err = NewDirectory(js, mb.Bus, cfg, o); err != nil {
		return nil, err
	}
	if mb.Keys, err = NewKeyDirectory(js, cfg, o); err != nil {
		return nil, err
	}
	return mb, nil
}

// Close leaves the cluster: directory entries withdrawn, store and bus
// stopped ("bye" heartbeat), the connection drained, then the embedded
// server shut down in lame-duck mode so its Raft leaderships move first.
func (mb *Member) Close() error {
	var errs []error
	if mb.Keys != nil {
		errs = append(errs, mb.Keys.Close())
	}
	if mb.Directory != nil {
		errs = append(errs, mb.Directory.Close())
	}
	if mb.Store != nil {
		errs = append(errs, mb.Store.Close())
	}
	if mb.Bus != nil {
		errs = append(errs, mb.Bus.Close())
	}
	if mb.Conn != nil {
		mb.Conn.Close()
	}
	if mb.Embedded != nil {
		mb.Embedded.Close()
	}
	return errors.Join(errs...)
}

// Kill stops this member as a crash would (tests): no bye, no lame duck,
// no directory withdrawal.
func (mb *Member) Kill() {
	if mb.Bus != nil {
		if l := mb.Bus.linksOf(); l != nil {
			l.close()
		}
	}
	if mb.Conn != nil {
		mb.Conn.Close()
	}
	if mb.Embedded != nil {
		mb.Embedded.Kill()
	}
	if mb.Store != nil {
		_ = mb.Store.Close()
	}
	if mb.Directory != nil {
		mb.Directory.cancel()
		mb.Directory.wg.Wait()
	}
	if mb.Keys != nil {
		mb.Keys.cancel()
		mb.Keys.wg.Wait()
	}
	if mb.Bus != nil {
		mb.Bus.once.Do(func() { close(mb.Bus.stop); <-mb.Bus.done })
	}
}
