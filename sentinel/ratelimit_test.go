package sentinel

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/envelope"
)

func TestRateStartsWork(t *testing.T) {
	for _, c := range []struct {
		name  string
		frame string
		rtype envelope.RType
		corr  string
		to    string
		// replied: the envelope answered a request routed to its sender (conn.answered)
		replied bool
		want    bool
	}{
		{"request", envelope.TypeData, envelope.RTypeReply, "c1", "math@fame.fabric", false, true},
		{"stream request", envelope.TypeData, envelope.RTypeStream, "c1", "math@fame.fabric", false, true},
		{"request to a path", envelope.TypeData, envelope.RTypeReply, "c1", "math@/s/r1", false, true},
		{"request with a pending corrId", envelope.TypeData, envelope.RTypeReply, "c1", "math@/s/r1", true, true},
		{"reply", envelope.TypeData, 0, "c1", "__rpc__x@/s/client", true, false},
		{"stream item", envelope.TypeData, 0, "c1", "__rpc__x@/s/client", true, false},
		{"reply-shaped, answering nothing", envelope.TypeData, 0, "c1", "math@/s/r1", false, true},
		{"one-way to a logical", envelope.TypeData, 0, "", "math@fame.fabric", false, true},
		{"one-way to a path", envelope.TypeData, 0, "", "inbox@/s/client", false, true},
		{"reply-shaped to a logical", envelope.TypeData, 0, "c1", "math@fame.fabric", false, true},
		{"secure open", envelope.TypeSecureOpen, 0, "c1", "math@fame.fabric", false, true},
		{"secure accept", envelope.TypeSecureAccept, 0, "c1", "__rpc__x@/s/client", true, false},
		{"delivery ack", envelope.TypeDeliveryAck, 0, "c1", "__rpc__x@/s/client", false, false},
		{"heartbeat", envelope.TypeNodeHeartbeat, 0, "", "", false, false},
	} {
		h := &envelope.Header{FrameType: []byte(c.frame), RType: c.rtype, CorrID: []byte(c.corr)}
		if got := startsWork(h, c.replied); got != c.want {
			t.Errorf("%s: startsWork = %v, want %v", c.name, got, c.want)
		}
	}
}

func testRateLimits(t *testing.T, o RateLimitOptions) (*rateLimits, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r := newRateLimits(o, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if r == nil {
		t.Fatal("rate limits off")
	}
	return r, reg
}

func rateReq(corr string) *envelope.Header {
	return &envelope.Header{FrameType: []byte(envelope.TypeData), RType: envelope.RTypeReply, CorrID: []byte(corr),
		ID: []byte("id-" + corr), ReplyTo: []byte("__rpc__x@/s/c")}
}

// TestRateCheck: table of rules, callers and targets; each step says whether the call passes
// and, when refused, by which kind. Time is synctest's, so the refill is exact.
func TestRateCheck(t *testing.T) {
	idRule := RateRule{Default: RateSpec{Rate: 2, Burst: 2},
		Overrides: map[string]RateSpec{"vip": {Rate: 0}, "spiffe-less": {Rate: 1, Burst: 1}}}
	addrRule := RateRule{Overrides: map[string]RateSpec{"hot@fame.fabric": {Rate: 1, Burst: 1}}}
	type step struct {
		wait   time.Duration
		caller string
		to     string
		kind   string // "" passes
	}
	for _, c := range []struct {
		name  string
		opts  RateLimitOptions
		steps []step
	}{
		{"identity burst then refill", RateLimitOptions{PerIdentity: idRule}, []step{
			{0, "a", "m@f", ""}, {0, "a", "m@f", ""}, {0, "a", "m@f", rateKindIdentity},
			{0, "b", "m@f", ""}, // another caller has its own bucket
			{500 * time.Millisecond, "a", "m@f", ""}, {0, "a", "m@f", rateKindIdentity},
		}},
		{"override exempts and tightens", RateLimitOptions{PerIdentity: idRule}, []step{
			{0, "vip", "m@f", ""}, {0, "vip", "m@f", ""}, {0, "vip", "m@f", ""}, {0, "vip", "m@f", ""},
			{0, "spiffe-less", "m@f", ""}, {0, "spiffe-less", "m@f", rateKindIdentity},
		}},
		{"address override only", RateLimitOptions{PerAddress: addrRule}, []step{
			{0, "a", "hot@fame.fabric", ""}, {0, "b", "hot@fame.fabric", rateKindAddress},
			{0, "a", "cold@fame.fabric", ""}, {0, "a", "cold@fame.fabric", ""}, {0, "a", "cold@fame.fabric", ""},
			{time.Second, "b", "hot@fame.fabric", ""},
		}},
		{"address refusal gives the identity token back", RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 1, Burst: 2}}, PerAddress: addrRule}, []step{
			{0, "a", "hot@fame.fabric", ""}, {0, "a", "hot@fame.fabric", rateKindAddress},
			{0, "a", "m@f", ""}, // the refused call did not spend a's second token
			{0, "a", "m@f", rateKindIdentity},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, _ := testRateLimits(t, c.opts)
				conns := map[string]*conn{}
				for i, s := range c.steps {
					time.Sleep(s.wait)
					src := conns[s.caller]
					if src == nil {
						src = &conn{identity: identity{systemID: s.caller}}
						conns[s.caller] = src
					}
					kind, reason, retry, ok := r.check(src, rateReq("c"), []byte(s.to), false)
					if ok != (s.kind == "") || kind != s.kind {
						t.Fatalf("step %d %+v: ok %v kind %q (%s)", i, s, ok, kind, reason)
					}
					if !ok && (retry <= 0 || !strings.HasPrefix(reason, "RATE_LIMITED: ") || !strings.Contains(reason, "retry_after_ms=")) {
						t.Fatalf("step %d: refusal without a retry hint: %v %q", i, retry, reason)
					}
				}
			})
		})
	}
}

// TestRateRetryHint: the hint is the time until the next token, rounded up to a millisecond,
// and a caller that waits that long is served.
func TestRateRetryHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := testRateLimits(t, RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 4, Burst: 1}}})
		src := &conn{identity: identity{systemID: "a"}}
		if _, _, _, ok := r.check(src, rateReq("1"), []byte("m@f"), false); !ok {
			t.Fatal("first call refused")
		}
		_, reason, retry, ok := r.check(src, rateReq("2"), []byte("m@f"), false)
		if ok || retry != 250*time.Millisecond || !strings.HasSuffix(reason, "retry_after_ms=250") {
			t.Fatalf("hint %v %q, want 250ms", retry, reason)
		}
		time.Sleep(retry)
		if _, _, _, ok := r.check(src, rateReq("3"), []byte("m@f"), false); !ok {
			t.Fatal("a caller that waited for the hint was refused")
		}
	})
}

// TestRateRepliesPass: replies and stream items owed to a caller, and acks, are never refused,
// however many.
func TestRateRepliesPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := testRateLimits(t, RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 1, Burst: 1}},
			PerAddress: RateRule{Default: RateSpec{Rate: 1, Burst: 1}}})
		replica := &conn{identity: identity{systemID: "r1"}}
		for i := 0; i < 100; i++ {
			reply := &envelope.Header{FrameType: []byte(envelope.TypeData), CorrID: []byte("c")}
			if _, _, _, ok := r.check(replica, reply, []byte("__rpc__x@/s/client"), true); !ok {
				t.Fatalf("reply %d refused", i)
			}
			ack := &envelope.Header{FrameType: []byte(envelope.TypeDeliveryAck), CorrID: []byte("c")}
			if _, _, _, ok := r.check(replica, ack, []byte("x@fame.fabric"), false); !ok {
				t.Fatalf("ack %d refused", i)
			}
		}
	})
}

// TestRateTablesBounded: a peer spraying identities or addresses holds at most max_entries
// buckets per rule.
func TestRateTablesBounded(t *testing.T) {
	r, _ := testRateLimits(t, RateLimitOptions{MaxEntries: 100,
		PerIdentity: RateRule{Default: RateSpec{Rate: 10}}, PerAddress: RateRule{Default: RateSpec{Rate: 10}}})
	for i := 0; i < 10000; i++ {
		src := &conn{identity: identity{systemID: "id" + string(rune('a'+i%26)) + strings.Repeat("x", i%50) + string(rune(i))}}
		r.check(src, rateReq("c"), []byte("addr"+string(rune(i))+"@fame.fabric"), false)
	}
	if n, m := r.ident.len(), r.addr.len(); n > 100 || m > 100 {
		t.Fatalf("tables hold %d identities and %d addresses, want <= 100 each", n, m)
	}
}

// TestRateIdentityChoice: SPIFFE ID (not available without a secLayer here), else the
// token/ticket subject, else the system id; computed once per connection.
func TestRateIdentityChoice(t *testing.T) {
	r, _ := testRateLimits(t, RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 1}}})
	if got := r.rateIdentity(&conn{identity: identity{systemID: "n1"}}); got != "n1" {
		t.Fatalf("open admission: %q, want the system id", got)
	}
	c := &conn{identity: identity{systemID: "n1"}, principal: &Principal{Subject: "math-client"}}
	if got := r.rateIdentity(c); got != "math-client" {
		t.Fatalf("token: %q, want the subject", got)
	}
	c.principal.Subject = "other"
	if got := r.rateIdentity(c); got != "math-client" {
		t.Fatalf("not cached: %q", got)
	}
}

// TestRateTwiceTheLimit is the check in fake time: a caller at 40 calls/s against
// 20/s (burst 10) for 3 s gets burst + 20/s × 3 s served within ±10 %, the rest refused, and a
// second caller at 10/s alongside gets every call served.
func TestRateTwiceTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := testRateLimits(t, RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 20, Burst: 10}}})
		hot, calm := &conn{identity: identity{systemID: "hot"}}, &conn{identity: identity{systemID: "calm"}}
		served, refused, calmServed := 0, 0, 0
		const ticks = 120 // 40/s for 3 s
		for i := 0; i < ticks; i++ {
			time.Sleep(25 * time.Millisecond)
			if _, _, _, ok := r.check(hot, rateReq("h"), []byte("m@f"), false); ok {
				served++
			} else {
				refused++
			}
			if i%4 == 0 {
				if _, _, _, ok := r.check(calm, rateReq("c"), []byte("m@f"), false); ok {
					calmServed++
				}
			}
		}
		want := 10 + 20*3.0
		if d := float64(served) - want; d > 0.1*want || d < -0.1*want || served+refused != ticks {
			t.Fatalf("hot caller: %d served, %d refused; want %.0f ± 10%% served", served, refused, want)
		}
		if calmServed != ticks/4 {
			t.Fatalf("calm caller: %d of %d served", calmServed, ticks/4)
		}
	})
}

// TestRateLimitedCounted: a refusal moves fame_rate_limited_total{kind}.
func TestRateLimitedCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := testRateLimits(t, RateLimitOptions{PerIdentity: RateRule{Default: RateSpec{Rate: 1, Burst: 1}}})
		src := &conn{identity: identity{systemID: "a"}}
		for i := 0; i < 5; i++ {
			if kind, _, retry, ok := r.check(src, rateReq("c"), []byte("m@f"), false); !ok {
				r.refused(src, kind, rateReq("c"), []byte("m@f"), retry)
			}
		}
		if got := counterValue(t, r.limited.WithLabelValues(rateKindIdentity)); got != 4 {
			t.Fatalf("fame_rate_limited_total{kind=identity} = %v, want 4", got)
		}
		if got := r.held.Load(); got != 3 {
			t.Fatalf("held-back log lines %d, want 3 (one logged per second)", got)
		}
	})
}

// TestRateLimitSettings: limits.rate in the file, FAME_RATE_LIMIT_* over it, problems named.
func TestRateLimitSettings(t *testing.T) {
	load := func(body string, env map[string]string) (Options, error) {
		t.Helper()
		path := ""
		if body != "" {
			path = t.TempDir() + "/s.yml"
			if err := os.WriteFile(path, []byte("node:\n  type: Sentinel\n"+body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return LoadOptions(path, config.MapEnv(env))
	}
	o, err := load("", nil)
	if err != nil || o.RateLimits.PerIdentity.on() || o.RateLimits.PerAddress.on() {
		t.Fatalf("default: %+v, %v; want off", o.RateLimits, err)
	}
	file := `  limits:
    rate:
      per_identity:
        rate: 100
        burst: 200
        overrides:
          "spiffe://naylence.fame/nodes/abc": {rate: 10, burst: 20}
          math-client: {rate: 0}
      per_address:
        overrides:
          "math@fame.fabric": {rate: 500}
      max_entries: 1000
`
	o, err = load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	rl := o.RateLimits
	if rl.PerIdentity.Default != (RateSpec{100, 200}) || rl.PerIdentity.Overrides["spiffe://naylence.fame/nodes/abc"] != (RateSpec{10, 20}) ||
		rl.PerIdentity.Overrides["math-client"] != (RateSpec{}) || rl.PerAddress.Overrides["math@fame.fabric"] != (RateSpec{Rate: 500}) ||
		rl.MaxEntries != 1000 || !rl.PerAddress.on() {
		t.Fatalf("file: %+v", rl)
	}
	o, err = load(file, map[string]string{"FAME_RATE_LIMIT_IDENTITY": "5", "FAME_RATE_LIMIT_IDENTITY_BURST": "7",
		"FAME_RATE_LIMIT_ADDRESS": "9", "FAME_RATE_LIMIT_ADDRESS_BURST": "11"})
	if err != nil || o.RateLimits.PerIdentity.Default != (RateSpec{5, 7}) || o.RateLimits.PerAddress.Default != (RateSpec{9, 11}) {
		t.Fatalf("variables over file: %+v, %v", o.RateLimits, err)
	}
	for _, c := range []struct {
		body string
		env  map[string]string
		name string
	}{
		{"  limits: {rate: {per_identity: {rate: -1}}}\n", nil, "limits.rate.per_identity.rate"},
		{"  limits: {rate: {per_address: {rate: 1, burst: -2}}}\n", nil, "limits.rate.per_address.burst"},
		{"  limits: {rate: {per_address: {overrides: {\"a@b\": {rate: -3}}}}}\n", nil, "overrides[\"a@b\"]"},
		{"  limits: {rate: {max_entries: -1}}\n", nil, "limits.rate.max_entries"},
		{"", map[string]string{"FAME_RATE_LIMIT_IDENTITY": "fast"}, "FAME_RATE_LIMIT_IDENTITY"},
		{"", map[string]string{"FAME_RATE_LIMIT_ADDRESS": "-4"}, "limits.rate.per_address.rate"},
		{"", map[string]string{"FAME_RATE_LIMIT_ADDRESS_BURST": "x"}, "FAME_RATE_LIMIT_ADDRESS_BURST"},
	} {
		_, err := load(c.body, c.env)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%q %v: err %v, want a config problem naming %s", c.body, c.env, err, c.name)
		}
	}
	if _, err := load("  limits: {rate: {per_identity: {rait: 1}}}\n", nil); err == nil || !strings.Contains(err.Error(), "rait") {
		t.Errorf("a misspelt key: %v", err)
	}
}
