package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// leaderElected is the prefix of JetStream's stream-leader advisories.
	leaderElected = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."
	rewatchAgain  = 2 * time.Second
	staleCheck    = time.Second
)

// lastSeq is the bucket stream's last sequence (0 when it cannot be read:
// the check then waits for the next tick).
func lastSeq(ctx context.Context, kv jetstream.KeyValue) uint64 {
	ctx, cancel := context.WithTimeout(ctx, staleCheck/2)
	defer cancel()
	st, err := kv.Status(ctx)
	if err != nil {
		return 0
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo() != nil {
		return bs.StreamInfo().State.LastSeq
	}
	return 0
}

// watchKV watches a whole bucket until ctx ends: apply gets every entry in
// revision order, synced is called once the initial values are in.
//
// A KV watch rides an ordered consumer that lives on the stream leader;
// when that leader dies the consumer notices only after missing its idle
// heartbeats (seconds: TestLeaderLoss saw no update for over 10 s), and the
// local view would stay stale that long. So the stream's leader-elected
// advisory restarts the watch at once, resuming after the last revision
// seen (deletes made meanwhile arrive as markers, nothing is reloaded).
func watchKV(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, stream string, log *slog.Logger,
	apply func(jetstream.KeyValueEntry), synced func()) {
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	sub, err := nc.Subscribe(leaderElected+stream, func(*nats.Msg) {
		poke()
		// Once more when a server that handed its leadership over in lame
		// duck has gone (it waits a second after the transfer): a watch
		// restarted at the advisory can have had its consumer placed on it
		// (TestLeaderLoss: 4 s without updates otherwise).
		time.AfterFunc(rewatchAgain, poke)
	})
	if err != nil {
		log.Warn("no leader advisories; a watch recovers from a leader loss only by its heartbeats", "stream", stream, "err", err)
	} else {
		defer func() { _ = sub.Unsubscribe() }()
	}
	var last uint64
	// The staleness check: once a second the stream's last sequence is
	// read; if a second later the watch has still not delivered up to it,
	// the watch is stuck (its consumer died with a server and the advisory
	// restart came too early) and is restarted.
	check := time.NewTicker(staleCheck)
	defer check.Stop()
	var target uint64
	retry := 50 * time.Millisecond
	for ctx.Err() == nil {
		var opts []jetstream.WatchOpt
		if last > 0 {
			opts = append(opts, jetstream.ResumeFromRevision(last+1))
		}
		// Everything up to base is delivered by the time the watch says its
		// initial values are in; counting it as seen keeps the staleness
		// check quiet when the stream's last message is gone (an expired
		// marker), which no watch would ever deliver.
		base := lastSeq(ctx, kv)
		w, err := kv.WatchAll(ctx, opts...)
		if err != nil {
			log.Warn("watch failed; retrying", "stream", stream, "err", err)
			if !sleepCtx(ctx, retry) {
				return
			}
			retry = min(2*retry, time.Second)
			continue
		}
		retry = 50 * time.Millisecond
		restart := false
		for !restart {
			select {
			case e, ok := <-w.Updates():
				switch {
				case !ok:
					restart = true
				case e == nil:
					last = max(last, base)
					synced()
				default:
					last = e.Revision()
					apply(e)
				}
			case <-kick:
				log.Info("stream leader elected; watch restarted", "stream", stream, "after_revision", last)
				restart = true
			case <-check.C:
				if target > last {
					log.Warn("watch behind the stream for a second; restarted", "stream", stream, "watched", last, "stream_last", target)
					restart = true
				}
				target = lastSeq(ctx, kv)
			case <-ctx.Done():
				restart = true
			}
		}
		_ = w.Stop()
	}
}
