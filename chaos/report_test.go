package chaos

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fame-go/fame/examples/math/mathagent"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func execution(key string, try int, replica string, ms int) mathagent.Execution {
	return mathagent.Execution{Key: key, Attempt: try, Replica: replica, Op: "add", UnixNano: at(ms).UnixNano()}
}

// TestPlanIsSeeded: the same seed gives the same schedule, another seed another one, and
// every fault fits the window with its hold and a valid target.
func TestPlanIsSeeded(t *testing.T) {
	a, b := plan(1, 90*time.Second, 3), plan(1, 90*time.Second, 3)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("seed 1 gave two schedules")
	}
	if reflect.DeepEqual(a, plan(2, 90*time.Second, 3)) {
		t.Fatal("seeds 1 and 2 gave the same schedule")
	}
	if len(a) < 5 {
		t.Fatalf("only %d faults in 90 s", len(a))
	}
	kinds := map[string]bool{}
	for s := uint64(1); s <= 20; s++ {
		for _, f := range plan(s, 90*time.Second, 3) {
			kinds[f.Kind] = true
			if f.At+f.Hold > 90*time.Second {
				t.Errorf("seed %d: %s at %s + %s past the window", s, f.Kind, f.At, f.Hold)
			}
			if f.Kind == FaultReplicaStop && (f.Hold < time.Second || f.Hold > 10*time.Second) {
				t.Errorf("seed %d: SIGSTOP for %s, want 1–10 s", s, f.Hold)
			}
			if f.replica < 0 || f.replica > 2 {
				t.Errorf("seed %d: replica %d", s, f.replica)
			}
		}
	}
	for _, k := range []string{FaultReplicaKill, FaultReplicaStop, FaultSentinelKill, FaultDrainAdmin, FaultDrainSIGTERM, FaultSlowReader} {
		if !kinds[k] {
			t.Errorf("20 seeds never planned %s", k)
		}
	}
}

// TestLostAccounting: an attempt hit by a fault must end with a reply or a nack within 4 s of
// the fault; a timeout is always lost; a slow answer without a fault is not.
func TestLostAccounting(t *testing.T) {
	faults := []Fault{{Kind: FaultReplicaStop, Target: "replica1", Start: at(10_000), Recovered: at(18_000)}}
	atts := []attempt{
		{Key: "a", Try: 1, Start: at(9_000), End: at(13_500), Outcome: OutNacked, Err: `message delivery failed with code "ROUTE_CONNECTOR_CLOSED"`}, // 3.5 s after: in time
		{Key: "b", Try: 1, Start: at(9_500), End: at(14_500), Outcome: OutAnswered},                                                                  // 4.5 s after: lost
		{Key: "c", Try: 1, Start: at(1_000), End: at(6_000), Outcome: OutAnswered},                                                                   // slow, no fault
		{Key: "d", Try: 1, Start: at(20_000), End: at(35_000), Outcome: OutTimeout},                                                                  // nothing at all
		{Key: "a", Try: 2, Start: at(13_600), End: at(13_700), Outcome: OutAnswered},
	}
	var c CallCounts
	var lost []attemptView
	countAttempts(&c, atts, faults, t0, &lost)
	if c.Started != 5 || c.Answered != 2 || c.Nacked != 1 || c.Lost != 2 || c.LostTimeout != 1 || c.SlowNoFault != 1 {
		t.Errorf("counts = %+v", c)
	}
	if c.NackCodes["ROUTE_CONNECTOR_CLOSED"] != 1 {
		t.Errorf("nack codes = %v", c.NackCodes)
	}
	if c.Logical != 4 || c.LogicalDone != 3 { // b was answered, late
		t.Errorf("logical %d answered %d, want 4 and 3", c.Logical, c.LogicalDone)
	}
	if len(lost) != 2 || lost[0].Key != "b" || lost[0].Fault == "" || lost[1].Key != "d" {
		t.Errorf("lost detail = %+v", lost)
	}
}

// TestDuplicates: a second execution is explained only by a kill or stop of the first
// execution's replica (or a sentinel kill) right after it; a drain or a fault elsewhere
// explains nothing.
func TestDuplicates(t *testing.T) {
	faults := []Fault{
		{Kind: FaultReplicaKill, Target: "replica1", Start: at(10_050)},
		{Kind: FaultDrainAdmin, Target: "replica2", Start: at(20_010)},
		{Kind: FaultSentinelKill, Target: "sentinel", Start: at(30_500)},
	}
	execs := []mathagent.Execution{
		execution("k1", 1, "replica1", 10_000), execution("k1", 2, "replica2", 11_000), // killed right after: explained
		execution("k2", 1, "replica2", 20_000), execution("k2", 2, "replica3", 21_000), // drained: unexplained
		execution("k3", 1, "replica3", 10_000), execution("k3", 1, "replica2", 10_900), // kill of another replica: unexplained
		execution("k4", 1, "replica3", 30_000), execution("k4", 1, "replica3", 31_000), // sentinel killed: explained
		execution("k5", 1, "replica1", 1_000),
	}
	d := classifyDuplicates(execs, faults, nil, t0)
	if d.Keys != 4 || d.Explained != 2 || d.Unexplained != 2 || d.SameAttempt != 2 {
		t.Errorf("duplicates = %+v", d)
	}
	if d.ByReason[FaultReplicaKill] != 1 || d.ByReason[FaultSentinelKill] != 1 {
		t.Errorf("by reason = %v", d.ByReason)
	}
	for _, v := range d.Detail {
		if (v.Key == "k2" || v.Key == "k3") && v.Explained != "" {
			t.Errorf("%s explained by %s", v.Key, v.Explained)
		}
	}
}

// TestSessions: a move away from a faulted replica is a re-pin with its latency; a move away
// from a healthy one is counted and named.
func TestSessions(t *testing.T) {
	faults := []Fault{{Kind: FaultReplicaKill, Target: "replica1", Start: at(10_000), Recovered: at(12_000)}}
	atts := []attempt{
		{Caller: "s1", Key: "s1-1", Try: 1, Start: at(9_000), End: at(9_010), Outcome: OutAnswered},
		{Caller: "s1", Key: "s1-2", Try: 1, Start: at(10_100), End: at(10_300), Outcome: OutAnswered}, // re-pinned after 300 ms
		{Caller: "s2", Key: "s2-1", Try: 1, Start: at(9_000), End: at(9_010), Outcome: OutAnswered},
		{Caller: "s2", Key: "s2-2", Try: 1, Start: at(15_000), End: at(15_010), Outcome: OutAnswered}, // replica2 -> replica3, healthy
		{Caller: "s2", Key: "s2-3", Try: 1, Start: at(16_000), End: at(16_010), Outcome: OutNacked},
	}
	execs := []mathagent.Execution{execution("s1-1", 1, "replica1", 9_005), execution("s1-2", 1, "replica2", 10_250),
		execution("s2-1", 1, "replica2", 9_005), execution("s2-2", 1, "replica3", 15_005)}
	s := analyzeSessions(atts, execs, faults, t0)
	if s.Sessions != 2 || s.Moves != 2 || s.MovedOffHealthy != 1 || len(s.MovedDetail) != 1 {
		t.Errorf("sessions = %+v", s)
	}
	if !reflect.DeepEqual(s.RepinMS, []int64{300}) || s.RepinHistogram["<500ms"] != 1 {
		t.Errorf("re-pin = %v %v", s.RepinMS, s.RepinHistogram)
	}
}

// TestJudge: the RSS and goroutine bounds (growth under 10 %; at most 5 goroutines more).
func TestJudge(t *testing.T) {
	for _, tt := range []struct {
		p    ProcInfo
		want bool
	}{
		{ProcInfo{RSSGrowthPct: 9.9, WarmGoroutines: 30, EndGoroutines: 35}, true},
		{ProcInfo{RSSGrowthPct: 10, WarmGoroutines: 30, EndGoroutines: 30}, false},
		{ProcInfo{RSSGrowthPct: 1, WarmGoroutines: 30, EndGoroutines: 36}, false},
		{ProcInfo{RSSGrowthPct: 1, WarmGoroutines: 30, EndGoroutines: 24}, true}, // fewer is no leak
		{ProcInfo{RSSGrowthPct: 1, WarmGoroutines: -1, EndGoroutines: -1}, true},
	} {
		if got := judge(tt.p); got != tt.want {
			t.Errorf("judge(%+v) = %v", tt.p, got)
		}
	}
}

// TestVerdict: each criterion alone fails the run.
func TestVerdict(t *testing.T) {
	ok := func() *Result {
		return &Result{Faults: []Fault{{Kind: FaultReplicaKill}}, Harness: ProcInfo{OK: true}}
	}
	r := ok()
	r.verdict()
	if !r.Pass {
		t.Fatalf("clean run failed: %v", r.FailReasons)
	}
	for name, spoil := range map[string]func(*Result){
		"lost":        func(r *Result) { r.Streams.Lost = 1 },
		"unexplained": func(r *Result) { r.Duplicates.Unexplained = 1 },
		"cut":         func(r *Result) { r.Streams.CutWithoutNack = 1 },
		"moved":       func(r *Result) { r.Sessions.MovedOffHealthy = 1 },
		"process":     func(r *Result) { r.Processes = []ProcInfo{{Role: "sentinel"}} },
		"fault error": func(r *Result) { r.Faults[0].Err = "no restart" },
		"no faults":   func(r *Result) { r.Faults = nil },
	} {
		r := ok()
		spoil(r)
		r.verdict()
		if r.Pass || len(r.FailReasons) != 1 {
			t.Errorf("%s: pass %v, reasons %v", name, r.Pass, r.FailReasons)
		}
	}
}

func TestGoroutinesFromMetrics(t *testing.T) {
	g, err := goroutines("# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_threads 9\n")
	if err != nil || g != 42 {
		t.Errorf("goroutines = %d, %v", g, err)
	}
	if _, err := goroutines("go_threads 9\n"); err == nil {
		t.Error("no go_goroutines gave no error")
	}
}

// TestDuplicateHeldByStoppedReplica: the stopped replica running, right after its SIGCONT, a
// request the fabric had re-sent elsewhere is explained; the same execution long after is not.
func TestDuplicateHeldByStoppedReplica(t *testing.T) {
	faults := []Fault{{Kind: FaultReplicaStop, Target: "replica1", Start: at(10_000), Released: at(15_000), Recovered: at(15_500)}}
	execs := []mathagent.Execution{
		execution("h1", 1, "replica3", 12_800), execution("h1", 1, "replica1", 15_050),
		execution("h2", 1, "replica3", 12_800), execution("h2", 1, "replica1", 25_000),
	}
	d := classifyDuplicates(execs, faults, nil, t0)
	if d.Explained != 1 || d.Unexplained != 1 || d.ByReason["replica_sigstop_held"] != 1 {
		t.Errorf("duplicates = %+v", d)
	}
}

func TestCountGoroutines(t *testing.T) {
	profile := "goroutine profile: total 9\n5 @ 0x1 0x2\n#\t0x1\tmain.worker+0x1\n\n3 @ 0x3\n#\t0x3\tnet/http.(*persistConn).readLoop+0x5\n\n1 @ 0x4\n#\t0x4\tmain.main+0x1\n"
	if n := countGoroutines(profile, "net/http.(*persistConn)"); n != 6 {
		t.Errorf("countGoroutines = %d, want 6", n)
	}
}

// TestStreamCuts: a stream cut is with a nack, with the SDK's prompt notice, or without a nack
// (a timeout, a truncation, or a notice that came too late).
func TestStreamCuts(t *testing.T) {
	faults := []Fault{{Kind: FaultSentinelKill, Target: "sentinel", Start: at(10_000), Recovered: at(11_000)}}
	atts := []attempt{
		{Caller: "s", Key: "a", Try: 1, Stream: true, Start: at(9_000), End: at(10_100), Outcome: OutNacked},
		{Caller: "s", Key: "b", Try: 1, Stream: true, Start: at(9_000), End: at(10_100), Outcome: OutError, Notice: true},
		{Caller: "s", Key: "c", Try: 1, Stream: true, Start: at(9_000), End: at(24_000), Outcome: OutTimeout},
		{Caller: "s", Key: "d", Try: 1, Stream: true, Start: at(9_000), End: at(9_500), Outcome: OutCut},
		{Caller: "s", Key: "e", Try: 1, Stream: true, Start: at(9_000), End: at(15_000), Outcome: OutError, Notice: true},
		{Caller: "s", Key: "f", Try: 1, Stream: true, Start: at(1_000), End: at(1_100), Outcome: OutAnswered},
	}
	r := analyze(Config{}, atts, nil, faults, t0, 0, nil)
	if r.Streams.CutWithNack != 1 || r.Streams.CutWithNotice != 1 || r.Streams.CutWithoutNack != 3 || r.Streams.Lost != 3 {
		t.Errorf("streams = %+v", r.Streams)
	}
}

// TestDuplicateDrainExit: a drained replica that exits (its drain timeout) right after an
// execution explains the second one; one that exited long before does not.
func TestDuplicateDrainExit(t *testing.T) {
	faults := []Fault{{Kind: FaultDrainAdmin, Target: "replica3", Start: at(26_000), Exited: at(36_100)}}
	execs := []mathagent.Execution{
		execution("d1", 1, "replica3", 36_000), execution("d1", 2, "replica1", 36_300),
		execution("d2", 1, "replica3", 20_000), execution("d2", 2, "replica1", 21_000),
	}
	d := classifyDuplicates(execs, faults, nil, t0)
	if d.Explained != 1 || d.Unexplained != 1 || d.ByReason["replica_drain_exit"] != 1 {
		t.Errorf("duplicates = %+v", d)
	}
}

// TestSlowReaderLostBound: a slow-reading client's stream hit by its own slow reading has
// until 4 s after the slow reading ends (the 30-minute run counted 8 such streams lost although
// each completed with every item right after the reading sped up); it is still lost past that,
// or when it ends with items missing; the slow reading hits no other caller.
func TestSlowReaderLostBound(t *testing.T) {
	slow := Fault{Kind: FaultSlowReader, Target: "slow-client", Start: at(10_000), Recovered: at(19_974)}
	faults := []Fault{slow}
	cases := []struct {
		name string
		a    attempt
		lost bool
	}{
		{"completed 0.15 s after the reading ended", attempt{Slow: true, Stream: true, Start: at(9_870), End: at(20_117), Outcome: OutAnswered}, false},
		{"completed 4.5 s after the reading ended", attempt{Slow: true, Stream: true, Start: at(9_870), End: at(24_500), Outcome: OutAnswered}, true},
		{"cut with items missing", attempt{Slow: true, Stream: true, Start: at(9_870), End: at(12_000), Outcome: OutCut}, true},
		{"another caller spanning the slow reading, answered late", attempt{Start: at(9_000), End: at(14_500), Outcome: OutAnswered}, false},
	}
	for _, c := range cases {
		if got := lostAttempt(c.a, faults); got != c.lost {
			t.Errorf("%s: lost = %v, want %v", c.name, got, c.lost)
		}
	}
	// A replica fault during the same slow stream is still judged from its own start.
	kill := Fault{Kind: FaultReplicaKill, Target: "replica1", Start: at(9_950), Recovered: at(12_000)}
	if !lostAttempt(attempt{Slow: true, Stream: true, Start: at(9_900), End: at(20_117), Outcome: OutAnswered}, []Fault{kill, slow}) {
		t.Error("a slow stream answered 10 s after a replica kill that hit it first was not lost")
	}
	var r Result
	r.SlowRead.Lost = 1
	r.Faults = faults
	r.verdict()
	if r.Pass {
		t.Error("a lost stream of the slow-reading client passed the verdict")
	}
}

// TestInstanceJudgedOverItsLifetime: an instance is judged from its own warm-up (the median of
// the warm window) to its last samples (the median of the last three, the last taken right
// before its kill), when it was observed JudgeSpan past the warm window; a killed instance is
// judged like one alive at the end; a short-lived one is not judged.
func TestInstanceJudgedOverItsLifetime(t *testing.T) {
	const mb = 1 << 20
	mk := func(life time.Duration, rss func(s float64) float64, gor func(s float64) int) *instance {
		in := &instance{proc: &proc{name: "sentinel"}, pid: 7, started: t0, ended: t0.Add(life), endHow: "kill -9 (fault)"}
		for d := 2 * time.Second; d <= life; d += 2 * time.Second {
			in.samples = append(in.samples, sample{At: t0.Add(d), RSSBytes: int64(rss(d.Seconds()) * mb), Goroutines: gor(d.Seconds())})
		}
		return in
	}
	flat := func(s float64) float64 {
		if s < 20 {
			return 28 + s/4 // the climb of the first seconds is not growth
		}
		return 33
	}
	noisy := func(s float64) int { // one sample under load now and then
		if int(s)%10 == 0 {
			return 60
		}
		return 47
	}
	w := DefaultInstanceWarmup
	p := procInfo(mk(70*time.Second, flat, noisy), t0.Add(time.Hour), w, time.Time{})
	if !p.Judged || !p.OK || p.RSSGrowthPct != 0 || p.WarmGoroutines != 47 || p.EndGoroutines != 47 {
		t.Fatalf("a settled instance killed at 70 s: %+v", p)
	}
	leak := mk(70*time.Second, func(s float64) float64 { return 30 + s/10 }, noisy) // +4 MiB over 40 s
	if p := procInfo(leak, t0.Add(time.Hour), w, time.Time{}); !p.Judged || p.OK || p.RSSGrowthPct < 10 {
		t.Fatalf("a growing instance killed at 70 s: %+v", p)
	}
	gorLeak := mk(70*time.Second, flat, func(s float64) int { return 40 + int(s)/4 })
	if p := procInfo(gorLeak, t0.Add(time.Hour), w, time.Time{}); !p.Judged || p.OK {
		t.Fatalf("an instance gaining goroutines: %+v", p)
	}
	short := mk(55*time.Second, flat, noisy)
	if p := procInfo(short, t0.Add(time.Hour), w, time.Time{}); p.Judged || !p.OK {
		t.Fatalf("an instance observed less than JudgeSpan past its warm window was judged: %+v", p)
	}
}

// TestReplicaWarmupFromItsFirstLoad: a replica that idles at 21 MiB for 40 s after its
// restart and then climbs to 23.2 MiB once load reaches it is not judged as growing when its
// warm-up counts from its first execution (it is, +10 %, counted from its start); a replica that
// grows after its load began still fails.
func TestReplicaWarmupFromItsFirstLoad(t *testing.T) {
	const mb = 1 << 20
	loadAt := 40.0
	mk := func(rss func(s float64) float64) *instance {
		in := &instance{proc: &proc{name: "replica3"}, pid: 9, started: t0, ended: t0.Add(110 * time.Second), endHow: "kill -9 (fault)"}
		for d := 2 * time.Second; d <= 110*time.Second; d += 2 * time.Second {
			in.samples = append(in.samples, sample{At: t0.Add(d), RSSBytes: int64(rss(d.Seconds()) * mb), Goroutines: 18})
		}
		return in
	}
	idleThenLoaded := func(s float64) float64 {
		if s < loadAt+4 {
			return 21.0
		}
		return 23.2
	}
	execs := []mathagent.Execution{{Key: "a", Replica: "replica3", UnixNano: t0.Add(time.Duration(loadAt) * time.Second).UnixNano()},
		{Key: "b", Replica: "replica3", UnixNano: t0.Add(50 * time.Second).UnixNano()}, {Key: "c", Replica: "replica1", UnixNano: t0.UnixNano()}}
	from := firstLoad(execTimes(execs), "replica3", t0)
	if !from.Equal(t0.Add(time.Duration(loadAt) * time.Second)) {
		t.Fatalf("firstLoad = %v", from)
	}
	w := 30 * time.Second
	if p := procInfo(mk(idleThenLoaded), t0.Add(time.Hour), w, time.Time{}); !p.Judged || p.OK {
		t.Fatalf("from its start the idle-then-loaded replica should fail (the artefact): %+v", p)
	}
	// 40 s + 30 s + 10 s leaves 30 s of its 110 s observed: judged, and settled.
	if p := procInfo(mk(idleThenLoaded), t0.Add(time.Hour), w, from); !p.Judged || !p.OK {
		t.Fatalf("from its first load: %+v", p)
	}
	growing := func(s float64) float64 { return 21 + max(0, s-loadAt)/10 }
	if p := procInfo(mk(growing), t0.Add(time.Hour), w, from); !p.Judged || p.OK {
		t.Fatalf("a replica growing after its load began passed: %+v", p)
	}
}

// TestTSClientAccounting: the TS client's lines become attempts counted apart; a timeout is
// lost and fails the run, a wrong sum is a wrong result, READY and other lines are not attempts.
func TestTSClientAccounting(t *testing.T) {
	if _, ok := parseTSLine("READY"); ok {
		t.Fatal("READY parsed as an attempt")
	}
	nack, ok := parseTSLine(`{"key":"ts-000009","try":1,"start_ms":1,"end_ms":2,"outcome":"error","err":"Message delivery failed with code 'ROUTE_CONNECTOR_CLOSED': Route to math@fame.fabric closed: math-replica3 detached"}`)
	if !ok || nack.Outcome != OutNacked || nackCode(nack.Err) != "ROUTE_CONNECTOR_CLOSED" {
		t.Fatalf("the reference SDK's delivery failure: %+v (code %q)", nack, nackCode(nack.Err))
	}
	ms := at(0).UnixMilli()
	line := func(key string, try int, from, to int64, outcome string) string {
		return fmt.Sprintf(`{"key":%q,"try":%d,"start_ms":%d,"end_ms":%d,"outcome":%q}`, key, try, ms+from, ms+to, outcome)
	}
	var atts []attempt
	for _, l := range []string{
		line("ts-000001", 1, 0, 5, "answered"),
		line("ts-000002", 1, 60, 15_060, "timeout"),
		line("ts-000002", 2, 15_160, 15_170, "answered"),
		line("ts-000003", 1, 15_300, 15_310, "wrong"),
		line("ts-000003", 2, 15_410, 15_420, "answered"),
	} {
		a, ok := parseTSLine(l)
		if !ok || !a.TS {
			t.Fatalf("%s: not parsed", l)
		}
		atts = append(atts, a)
	}
	r := analyze(Config{TSClient: true}, atts, nil, []Fault{{Kind: FaultSentinelKill, Target: "sentinel", Start: at(1_000), Recovered: at(2_000)}}, at(0), 0, nil)
	c := r.TSClient
	if c == nil || c.Started != 5 || c.Answered != 3 || c.Lost != 1 || c.LostTimeout != 1 || c.Wrong != 1 || c.Logical != 3 || c.LogicalDone != 3 {
		t.Fatalf("TS counts: %+v", c)
	}
	if r.Calls.Started != 0 {
		t.Fatalf("TS attempts counted with the Go callers: %+v", r.Calls)
	}
	r.verdict()
	if r.Pass {
		t.Fatal("a lost TS attempt passed")
	}
	// A timeout after a kill -9 of the sentinel hit it (the TS client's own connection died
	// under the call; the reference SDK does not re-send) is reported apart and does not fail.
	atts[1].Start, atts[1].End = at(900), at(15_900)
	atts[3].Outcome = OutError // no wrong sum this time
	r = analyze(Config{TSClient: true}, atts, nil, []Fault{{Kind: FaultSentinelKill, Target: "sentinel", Start: at(1_000), Recovered: at(2_000)}}, at(0), 0, nil)
	if c := r.TSClient; c.Lost != 1 || c.LostClientLink != 1 {
		t.Fatalf("TS counts: %+v", c)
	}
	r.Faults = []Fault{{Kind: FaultSentinelKill}}
	r.Harness.OK = true
	r.verdict()
	if !r.Pass {
		t.Fatalf("a TS timeout after a sentinel kill failed the run: %v", r.FailReasons)
	}
	r = analyze(Config{TSClient: true}, atts, nil, []Fault{{Kind: FaultReplicaKill, Target: "replica1", Start: at(1_000), Recovered: at(2_000)}}, at(0), 0, nil)
	if c := r.TSClient; c.Lost != 1 || c.LostClientLink != 0 {
		t.Fatalf("a TS timeout after a replica kill was put on the client's link: %+v", c)
	}
}

// TestCountGoroutinesLessWorkers: a replica's count leaves out the SDK's handler workers
// (resident or running a handler), as a debug=1 goroutine profile shows them.
func TestCountGoroutinesLessWorkers(t *testing.T) {
	profile := `goroutine profile: total 12
7 @ 0x43f1ce 0x44e3a5 0x8a1b2c 0x474861
#	0x8a1b2b	github.com/fame-go/fame/node.(*Node).worker+0x8a	/src/node/workers.go:110

2 @ 0x43f1ce 0x44e3a5 0x8a1b2c 0x474861
#	0x8a1c00	github.com/fame-go/fame/examples/math/mathagent.fib+0x20	/src/examples/math/mathagent/ops.go:40
#	0x8a1b2b	github.com/fame-go/fame/node.(*Node).worker+0x8a	/src/node/workers.go:110

3 @ 0x43f1ce 0x44e3a5 0x474861
#	0x8a2000	github.com/fame-go/fame/node.(*Node).supervise+0x1f	/src/node/node.go:120
`
	if n := countGoroutines(profile, residentWorkerFrame); n != 3 {
		t.Fatalf("goroutines less the workers = %d, want 3", n)
	}
}

// TestTSAttemptOnDeadLink: a TS attempt goes over a dead connection when a sentinel kill came
// while it was in flight, or before it started but before the runtime logged
// upstream_link_closed (the 2-minute overlay run's ts-000563 started 47 ms after the kill; the
// runtime noticed 8 s later); not when the runtime had noticed before it started, nor for a
// kill after it ended, nor without any sign the runtime noticed at all.
func TestTSAttemptOnDeadLink(t *testing.T) {
	kill := []Fault{{Kind: FaultSentinelKill, Target: "sentinel", Start: at(10_000), Recovered: at(11_100)}}
	noticed := []time.Time{at(18_000)}
	cases := []struct {
		name   string
		a      attempt
		closed []time.Time
		want   bool
	}{
		{"killed under the call", attempt{Start: at(9_990), End: at(24_990)}, noticed, true},
		{"sent 47 ms after the kill, noticed 8 s later", attempt{Start: at(10_047), End: at(25_047)}, noticed, true},
		{"sent after the runtime noticed", attempt{Start: at(18_100), End: at(33_100)}, noticed, false},
		{"ended before the kill", attempt{Start: at(1_000), End: at(9_000)}, noticed, false},
		{"no sign the runtime ever noticed", attempt{Start: at(10_047), End: at(25_047)}, nil, false},
	}
	for _, c := range cases {
		if got := onDeadLink(c.a, kill, c.closed); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := readTSLinkClosed("/nonexistent/ts-client.log"); got != nil {
		t.Errorf("no log: %v", got)
	}
}
