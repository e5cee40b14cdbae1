package stickiness

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fame-go/fame/security/aft"
)

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestTable(t testing.TB, mut func(*Config)) (*Table, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1735689600, 0)}
	cfg := DefaultConfig()
	if mut != nil {
		mut(&cfg)
	}
	tbl, err := NewTable(cfg, WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	return tbl, clk
}

// checkIndex verifies that the reverse index and the LRUs agree exactly.
func checkIndex(t *testing.T, tbl *Table) {
	t.Helper()
	fromLRU := map[string][2]int{}
	for k, ss := range []*shardSet{tbl.sessions, tbl.channels} {
		for i := range ss.shards {
			s := &ss.shards[i]
			s.mu.Lock()
			for _, key := range s.lru.Keys() {
				b, _ := s.lru.Peek(key)
				c := fromLRU[b.replica.Value()]
				c[k]++
				fromLRU[b.replica.Value()] = c
				tbl.idx.mu.Lock()
				set := tbl.idx.m[b.replica]
				if set == nil || set.of(kind(k))[key] != b {
					t.Errorf("binding %q (kind %d) on %s missing from index", key, k, b.replica.Value())
				}
				tbl.idx.mu.Unlock()
			}
			s.mu.Unlock()
		}
	}
	tbl.idx.mu.Lock()
	defer tbl.idx.mu.Unlock()
	for r, set := range tbl.idx.m {
		want := fromLRU[r.Value()]
		if len(set.sessions) != want[0] || len(set.channels) != want[1] {
			t.Errorf("index for %s has %d/%d entries, LRU %d/%d", r.Value(), len(set.sessions), len(set.channels), want[0], want[1])
		}
		if len(set.sessions)+len(set.channels) == 0 {
			t.Errorf("empty index set kept for %s", r.Value())
		}
	}
	if len(tbl.idx.m) != len(fromLRU) {
		t.Errorf("index has %d replicas, LRU %d", len(tbl.idx.m), len(fromLRU))
	}
}

func TestNewTableConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		check   func(Config) bool
	}{
		{"defaults", DefaultConfig(), false, func(c Config) bool { return c == DefaultConfig() }},
		{"zero fills defaults", Config{Enabled: true}, false, func(c Config) bool {
			return c.DefaultTTL == time.Hour && c.MaxTTL == 7200*time.Second && c.CacheMax == 100000 && c.SecurityLevel == aft.LevelSignedOptional
		}},
		{"default above max is capped", Config{DefaultTTL: 3 * time.Hour, MaxTTL: time.Hour}, false, func(c Config) bool { return c.DefaultTTL == time.Hour }},
		{"bad level", Config{SecurityLevel: "paranoid"}, true, nil},
		{"negative ttl", Config{DefaultTTL: -1}, true, nil},
		{"negative cache", Config{CacheMax: -5}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl, err := NewTable(tc.cfg)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(tbl.Config()) {
				t.Fatalf("config %+v", tbl.Config())
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]aft.Level{"": aft.LevelSignedOptional, "strict": aft.LevelStrict, "signed-optional": aft.LevelSignedOptional, "sid-only": aft.LevelSIDOnly} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseLevel("STRICT"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ParseLevel(STRICT) err = %v", err)
	}
}

func TestBindLookup(t *testing.T) {
	tbl, _ := newTestTable(t, nil)
	ops := []struct {
		op                   string // bind | lookup | bindch | lookupch | unbind | unbindch
		key, client, replica string
		wantOK               bool
		want                 string
	}{
		{"lookup", "s1", "", "", false, ""},
		{"bind", "s1", "", "R1", false, ""},
		{"lookup", "s1", "", "", true, "R1"},
		{"bind", "s2", "", "R2", false, ""},
		{"lookup", "s2", "", "", true, "R2"},
		{"bind", "", "", "R1", false, ""}, // ignored
		{"lookup", "", "", "", false, ""},
		{"bind", "s3", "", "", false, ""}, // ignored
		{"lookup", "s3", "", "", false, ""},
		{"bindch", "c1", "s1", "R1", false, ""},
		{"lookupch", "c1", "", "", true, "R1"},
		{"lookup", "c1", "", "", false, ""}, // channel ids are not sessions
		{"lookupch", "s1", "", "", false, ""},
		{"unbindch", "c1", "", "", false, ""},
		{"lookupch", "c1", "", "", false, ""},
		{"unbind", "s2", "", "", false, ""},
		{"lookup", "s2", "", "", false, ""},
		{"lookup", "s1", "", "", true, "R1"},
	}
	for i, o := range ops {
		var got string
		var ok bool
		switch o.op {
		case "bind":
			tbl.Bind(o.key, o.replica, 0)
			continue
		case "bindch":
			tbl.BindChannel(o.key, o.client, o.replica)
			continue
		case "unbind":
			tbl.Unbind(o.key)
			continue
		case "unbindch":
			tbl.UnbindChannel(o.key)
			continue
		case "lookup":
			got, ok = tbl.Lookup(o.key)
		case "lookupch":
			got, ok = tbl.LookupChannel(o.key)
		}
		if ok != o.wantOK || got != o.want {
			t.Fatalf("step %d %s(%q) = %q, %v; want %q, %v", i, o.op, o.key, got, ok, o.want, o.wantOK)
		}
	}
	st := tbl.Stats()
	if st.Size != 1 || st.Channels != 0 || st.Hits != 3 || st.Misses != 4 || st.ChannelHits != 1 || st.ChannelMisses != 2 {
		t.Fatalf("stats %+v", st)
	}
	checkIndex(t, tbl)
}

func TestDisabledTable(t *testing.T) {
	tbl, _ := newTestTable(t, func(c *Config) { c.Enabled = false })
	tbl.Bind("s", "R", 0)
	tbl.BindChannel("c", "s", "R")
	if _, ok := tbl.Lookup("s"); ok {
		t.Fatal("disabled table found a binding")
	}
	if err := tbl.LearnAFT("garbage", "x", "R", nil, time.Now()); err != nil {
		t.Fatalf("disabled LearnAFT: %v", err)
	}
	if st := tbl.Stats(); st.Size != 0 || st.Channels != 0 || len(st.AFTRefused) != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := tbl.Restore([]Binding{{ClientSID: "s", Replica: "R"}}); n != 0 {
		t.Fatalf("disabled restore took %d", n)
	}
}

func TestSlidingTTL(t *testing.T) {
	tbl, clk := newTestTable(t, func(c *Config) { c.DefaultTTL = 10 * time.Second; c.MaxTTL = time.Minute })
	tbl.Bind("s", "R", 0)            // 10 s default
	tbl.Bind("long", "R", time.Hour) // capped to 1 min
	tbl.BindChannel("c", "s", "R")
	for i := 0; i < 5; i++ { // used every 9 s: never expires
		clk.add(9 * time.Second)
		if _, ok := tbl.Lookup("s"); !ok {
			t.Fatalf("active session expired after %d refreshes", i)
		}
	}
	// The channel was not used for 45 s: gone.
	if _, ok := tbl.LookupChannel("c"); ok {
		t.Fatal("idle channel did not expire")
	}
	clk.add(10 * time.Second)
	if _, ok := tbl.Lookup("s"); ok {
		t.Fatal("session idle for exactly its TTL still found")
	}
	if _, ok := tbl.Lookup("long"); !ok {
		t.Fatal("1-minute binding expired after 55 s")
	}
	clk.add(61 * time.Second)
	if _, ok := tbl.Lookup("long"); ok {
		t.Fatal("ttl not capped at MaxTTL")
	}
	st := tbl.Stats()
	if st.Expired != 3 || st.Evictions != 0 || st.Size != 0 || st.Channels != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkIndex(t, tbl)
}

func TestSweep(t *testing.T) {
	tbl, clk := newTestTable(t, func(c *Config) { c.DefaultTTL = time.Minute })
	for i := 0; i < 10; i++ {
		tbl.Bind(fmt.Sprint("old", i), "R1", 0)
		tbl.BindChannel(fmt.Sprint("oldc", i), fmt.Sprint("old", i), "R1")
	}
	clk.add(50 * time.Second)
	tbl.Bind("new", "R2", 0)
	clk.add(20 * time.Second)
	if n := tbl.Sweep(); n != 20 {
		t.Fatalf("swept %d, want 20", n)
	}
	if st := tbl.Stats(); st.Size != 1 || st.Channels != 0 {
		t.Fatalf("after sweep %+v", st)
	}
	if tbl.SessionsOn("R1") != 0 || tbl.SessionsOn("R2") != 1 {
		t.Fatal("index not updated by sweep")
	}
	checkIndex(t, tbl)
}

func TestLRUBoundKeepsIndex(t *testing.T) {
	tbl, clk := newTestTable(t, func(c *Config) { c.CacheMax = 3 })
	tbl.Bind("a", "R1", 0)
	tbl.Bind("b", "R1", 0)
	tbl.Bind("c", "R2", 0)
	clk.add(time.Second)   // recency is tracked at promoteEvery granularity
	tbl.Lookup("a")        // a is now most recent; b is the LRU victim
	tbl.Bind("d", "R2", 0) // evicts b
	if _, ok := tbl.Lookup("b"); ok {
		t.Fatal("b should have been evicted")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := tbl.Lookup(k); !ok {
			t.Fatalf("%s evicted instead of b", k)
		}
	}
	if tbl.SessionsOn("R1") != 1 || tbl.SessionsOn("R2") != 2 {
		t.Fatalf("index counts R1=%d R2=%d", tbl.SessionsOn("R1"), tbl.SessionsOn("R2"))
	}
	lost := tbl.PurgeReplica("R1")
	if !reflect.DeepEqual(lost, []Lost{{ClientSID: "a"}}) {
		t.Fatalf("purge after eviction returned %+v", lost)
	}
	st := tbl.Stats()
	if st.Evictions != 1 || st.Size != 2 {
		t.Fatalf("stats %+v", st)
	}
	checkIndex(t, tbl)
}

func TestLookupPromotionGranularity(t *testing.T) {
	tbl, clk := newTestTable(t, func(c *Config) { c.CacheMax = 2 })
	tbl.Bind("a", "R", 0)
	tbl.Bind("b", "R", 0)
	tbl.Lookup("a") // same instant as its bind: not promoted
	tbl.Bind("c", "R", 0)
	if _, ok := tbl.Lookup("a"); ok {
		t.Fatal("a promoted within promoteEvery")
	}
	clk.add(2 * time.Second)
	tbl.Lookup("b") // promoted: c is now the victim
	tbl.Bind("d", "R", 0)
	if _, ok := tbl.Lookup("b"); !ok {
		t.Fatal("b not promoted after promoteEvery")
	}
	if _, ok := tbl.Lookup("c"); ok {
		t.Fatal("c should have been evicted")
	}
}

func TestShardedBoundExact(t *testing.T) {
	tbl, _ := newTestTable(t, func(c *Config) { c.CacheMax = 10000 })
	if len(tbl.sessions.shards) < 2 {
		t.Fatal("expected a sharded table")
	}
	for i := 0; i < 25000; i++ {
		tbl.Bind(fmt.Sprintf("sid-%d", i), fmt.Sprintf("R%d", i%7), 0)
	}
	st := tbl.Stats()
	if st.Size != 10000 || st.Evictions != 15000 {
		t.Fatalf("size %d evictions %d", st.Size, st.Evictions)
	}
	total := 0
	for _, n := range tbl.ReplicaSessions() {
		total += n
	}
	if total != 10000 {
		t.Fatalf("index counts %d sessions", total)
	}
	checkIndex(t, tbl)
}

func TestPurgeReplica(t *testing.T) {
	tbl, _ := newTestTable(t, nil)
	tbl.Bind("a", "R1", 0)
	tbl.Bind("b", "R1", 0)
	tbl.Bind("c", "R2", 0)
	tbl.BindChannel("a2", "a", "R1")
	tbl.BindChannel("a1", "a", "R1")
	tbl.BindChannel("c1", "c", "R2")
	tbl.BindChannel("x1", "x", "R1") // channel whose session binding is elsewhere/unknown
	tbl.BindChannel("b1", "b", "R2") // b's channel lives on R2: not lost
	got := tbl.PurgeReplica("R1")
	sort.Slice(got, func(i, j int) bool { return got[i].ClientSID < got[j].ClientSID })
	want := []Lost{{ClientSID: "a", ChannelIDs: []string{"a1", "a2"}}, {ClientSID: "b"}, {ClientSID: "x", ChannelIDs: []string{"x1"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lost = %+v\nwant %+v", got, want)
	}
	for _, k := range []string{"a", "b"} {
		if _, ok := tbl.Lookup(k); ok {
			t.Fatalf("%s still bound", k)
		}
	}
	for _, k := range []string{"a1", "a2", "x1"} {
		if _, ok := tbl.LookupChannel(k); ok {
			t.Fatalf("channel %s still bound", k)
		}
	}
	if r, _ := tbl.Lookup("c"); r != "R2" {
		t.Fatal("other replica's session touched")
	}
	if r, _ := tbl.LookupChannel("b1"); r != "R2" {
		t.Fatal("other replica's channel touched")
	}
	if again := tbl.PurgeReplica("R1"); again != nil {
		t.Fatalf("second purge = %+v", again)
	}
	if none := tbl.PurgeReplica("nobody"); none != nil {
		t.Fatalf("unknown replica purge = %+v", none)
	}
	st := tbl.Stats()
	if st.PurgedSessions != 2 || st.PurgedChannels != 3 || st.Evictions != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkIndex(t, tbl)
}

func TestRepin(t *testing.T) {
	tbl, _ := newTestTable(t, nil)
	tbl.Bind("a", "R1", 0)
	tbl.Bind("a", "R1", 0) // same: refresh, not a re-pin
	tbl.Bind("a", "R2", 0)
	if r, _ := tbl.Lookup("a"); r != "R2" {
		t.Fatalf("a on %s", r)
	}
	if st := tbl.Stats(); st.Repins != 1 || st.Size != 1 {
		t.Fatalf("stats %+v", st)
	}
	if lost := tbl.PurgeReplica("R1"); lost != nil {
		t.Fatalf("purging old replica returned %+v", lost)
	}
	if tbl.SessionsOn("R2") != 1 {
		t.Fatal("index lost re-pinned session")
	}
	checkIndex(t, tbl)
}

func TestSnapshotRestore(t *testing.T) {
	tbl, clk := newTestTable(t, func(c *Config) { c.DefaultTTL = time.Minute })
	tbl.Bind("a", "R1", 0)
	tbl.Bind("b", "R2", 30*time.Minute)
	tbl.BindChannel("c1", "a", "R1")
	tbl.Bind("gone", "R1", 0)
	clk.add(50 * time.Second)
	tbl.Lookup("a") // slides a to +110 s from start
	clk.add(20 * time.Second)
	snap := tbl.Snapshot() // "gone" and c1 expired at +60 s
	if len(snap) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	tbl2, err := NewTable(tbl.Config(), WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	extra := []Binding{
		{ClientSID: "", Replica: "R"},                                          // incomplete
		{ClientSID: "s", Replica: ""},                                          // incomplete
		{ClientSID: "old", Replica: "R", Expires: clk.now().Add(-time.Second)}, // expired
		{ClientSID: "fresh", Replica: "R3"},                                    // zero Expires: now+TTL
		{ClientSID: "z", ChannelID: "zc", Replica: "R3", Expires: clk.now().Add(time.Second)},
	}
	if n := tbl2.Restore(append(snap, extra...)); n != 4 {
		t.Fatalf("restored %d, want 4", n)
	}
	for k, want := range map[string]string{"a": "R1", "b": "R2", "fresh": "R3"} {
		if r, ok := tbl2.Lookup(k); !ok || r != want {
			t.Fatalf("restored %s = %q, %v", k, r, ok)
		}
	}
	if r, _ := tbl2.LookupChannel("zc"); r != "R3" {
		t.Fatal("channel not restored")
	}
	// Expiry survives the round trip: a was due at +110 s (now +70 s), and
	// was just refreshed by the Lookup above to now+60 s.
	clk.add(61 * time.Second)
	if _, ok := tbl2.Lookup("a"); ok {
		t.Fatal("restored binding lost its TTL")
	}
	if _, ok := tbl2.Lookup("b"); !ok {
		t.Fatal("30-minute binding lost")
	}
	checkIndex(t, tbl2)
}

func TestLearnAFT(t *testing.T) {
	v, priv := loadVectors(t)
	now := time.Unix(v.Now, 0)
	keys := keysFor(v.Signed.KID, priv.Public().(ed25519.PublicKey))
	tbl, _ := newTestTable(t, func(c *Config) { c.SecurityLevel = aft.LevelStrict })
	if err := tbl.LearnAFT(v.Signed.Token, "REPLICASID", "route-r1", keys, now); err != nil {
		t.Fatal(err)
	}
	if r, ok := tbl.Lookup("CLIENTSID"); !ok || r != "route-r1" {
		t.Fatalf("CLIENTSID -> %q, %v", r, ok)
	}
	err := tbl.LearnAFT(v.Unsigned.Token, "REPLICASID", "route-r2", keys, now)
	if !errors.Is(err, aft.ErrAlgNone) {
		t.Fatalf("unsigned at strict: %v", err)
	}
	if !errors.Is(tbl.LearnAFT(v.Signed.Token, "OTHER", "route-r2", keys, now), aft.ErrWrongSID) {
		t.Fatal("wrong sid accepted")
	}
	if !errors.Is(tbl.LearnAFT(v.Signed.Token, "REPLICASID", "route-r2", keys, now.Add(3*time.Hour)), aft.ErrExpired) {
		t.Fatal("expired accepted")
	}
	if r, _ := tbl.Lookup("CLIENTSID"); r != "route-r1" {
		t.Fatal("refused token changed the binding")
	}
	st := tbl.Stats()
	want := map[aft.Reason]uint64{aft.ReasonAlgNone: 1, aft.ReasonWrongSID: 1, aft.ReasonExpired: 1}
	if st.AFTVerified != 1 || !reflect.DeepEqual(st.AFTRefused, want) {
		t.Fatalf("stats verified=%d refused=%v", st.AFTVerified, st.AFTRefused)
	}

	opt, _ := newTestTable(t, nil)
	if err := opt.LearnAFT(v.Unsigned.Token, "REPLICASID", "route-r2", nil, now); err != nil {
		t.Fatal(err)
	}
	if st := opt.Stats(); st.AFTVerified != 1 || st.AFTNoClientSID != 1 || st.Size != 0 {
		t.Fatalf("unsigned without client_sid: %+v", st)
	}

	sidOnly, _ := newTestTable(t, func(c *Config) { c.SecurityLevel = aft.LevelSIDOnly })
	if !errors.Is(sidOnly.LearnAFT(v.Signed.Token, "REPLICASID", "r", keys, now), aft.ErrSIDOnly) {
		t.Fatal("sid-only accepted a token")
	}
}

func TestLookupZeroAllocs(t *testing.T) {
	tbl, _ := newTestTable(t, nil)
	tbl.Bind("2bDFT5akYCfhjCen05Vmym", "Cb8WVCC4ML5RsFMx", 0)
	if a := testing.AllocsPerRun(1000, func() { tbl.Lookup("2bDFT5akYCfhjCen05Vmym") }); a != 0 {
		t.Fatalf("Lookup hit allocates %v", a)
	}
	if a := testing.AllocsPerRun(1000, func() { tbl.Lookup("missing") }); a != 0 {
		t.Fatalf("Lookup miss allocates %v", a)
	}
}

func TestConcurrentTable(t *testing.T) {
	for _, max := range []int{50, 8192} { // single shard with heavy eviction; sharded
		t.Run(fmt.Sprint("cache", max), func(t *testing.T) {
			tbl, err := NewTable(Config{Enabled: true, CacheMax: max, DefaultTTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			replicas := []string{"R0", "R1", "R2", "R3"}
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 1))
					for i := 0; i < 3000; i++ {
						sid := fmt.Sprint("s", r.IntN(200))
						rep := replicas[r.IntN(len(replicas))]
						switch n := r.IntN(100); {
						case n < 50:
							if got, ok := tbl.Lookup(sid); ok && got == "" {
								t.Error("empty replica")
							}
						case n < 75:
							tbl.Bind(sid, rep, 0)
						case n < 90:
							tbl.BindChannel(sid+"-c", sid, rep)
						case n < 93:
							for _, l := range tbl.PurgeReplica(rep) {
								if l.ClientSID == "" {
									t.Error("lost entry without client sid")
								}
							}
						case n < 95:
							tbl.Sweep()
						case n < 97:
							tbl.Snapshot()
						default:
							tbl.Unbind(sid)
						}
					}
				}(g)
			}
			wg.Wait()
			checkIndex(t, tbl)
			for _, rep := range replicas {
				tbl.PurgeReplica(rep)
			}
			if st := tbl.Stats(); st.Size != 0 || st.Channels != 0 {
				t.Fatalf("after purging all replicas: %+v", st)
			}
			checkIndex(t, tbl)
		})
	}
}

func BenchmarkLookupHit(b *testing.B) {
	tbl, _ := newTestTable(b, nil)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("client-sid-%012d", i)
		tbl.Bind(keys[i], fmt.Sprintf("replica%09d", i%3), 0)
	}
	tbl2, _ := NewTable(DefaultConfig()) // real clock
	for i := range keys {
		tbl2.Bind(keys[i], "replica", 0)
	}
	b.Run("fakeclock", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tbl.Lookup(keys[i&1023])
			i++
		}
	})
	b.Run("realclock", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tbl2.Lookup(keys[i&1023])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				tbl2.Lookup(keys[i&1023])
				i++
			}
		})
	})
}

func BenchmarkLookupMiss(b *testing.B) {
	tbl, _ := NewTable(DefaultConfig())
	tbl.Bind("present", "R", 0)
	b.ReportAllocs()
	for b.Loop() {
		tbl.Lookup("absent-client-sid-000")
	}
}

func BenchmarkBind(b *testing.B) {
	tbl, _ := NewTable(DefaultConfig())
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprintf("client-sid-%012d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tbl.Bind(keys[i&(1<<16-1)], "replica-0000001", 0)
		i++
	}
}
