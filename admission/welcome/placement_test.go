package welcome

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fame-go/fame/envelope"
)

// readySentinel is a sentinel's /readyz answering status (settable) and counting probes.
type readySentinel struct {
	srv    *httptest.Server
	status atomic.Int32
	probes atomic.Int32
}

func newReadySentinel(t *testing.T, status int) *readySentinel {
	r := &readySentinel{}
	r.status.Store(int32(status))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.probes.Add(1)
		if req.URL.Path != "/readyz" {
			http.NotFound(w, req)
			return
		}
		w.WriteHeader(int(r.status.Load()))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *readySentinel) attachURL() string {
	return "ws://" + strings.TrimPrefix(r.srv.URL, "http://") + "/fame/v1/attach/ws/downstream"
}

// TestPlacementAcrossCluster: with the cluster's sentinels configured, hellos are placed on
// the ready ones only, spread over them, each node on the same sentinel every time while it
// is ready; the grant names that sentinel's path and attach URL; a sentinel that stops being
// ready (drain, death) gets no new node once its readiness is re-probed; with none ready the
// hello is refused 503 no_sentinel, naming what was seen of each.
func TestPlacementAcrossCluster(t *testing.T) {
	s1, s2, s3 := newReadySentinel(t, 200), newReadySentinel(t, 200), newReadySentinel(t, 503)
	now := time.Now()
	var clock atomic.Int64
	f := newFixture(t, func(c *Config) {
		c.Verifier, c.AllowAnonymous, c.Grants = nil, true, nil
		c.AllowedLogicals = []string{"*.fame.fabric"}
		c.TargetSystemID, c.AttachURL = "", ""
		c.Targets = []Target{{SystemID: "s1", AttachURL: s1.attachURL()}, {SystemID: "s2", AttachURL: s2.attachURL()},
			{SystemID: "s3", AttachURL: s3.attachURL()}}
		c.Now = func() time.Time { return now.Add(time.Duration(clock.Load())) }
	})
	place := func(sid string) (int, string, string, []byte) {
		t.Helper()
		resp, b := f.post(t, helloBody(t, &envelope.NodeHello{SystemID: sid, Logicals: []string{"fame.fabric"}}), "")
		if resp.StatusCode != 200 {
			return resp.StatusCode, "", "", b
		}
		w, gs := decodeWelcome(t, b)
		for _, g := range gs {
			if g.Purpose == "node.attach" || strings.HasPrefix(g.URL, "ws") {
				return 200, w.AssignedPath, g.URL, b
			}
		}
		t.Fatalf("no attach grant in %s", b)
		return 0, "", "", nil
	}
	urls := map[string]string{"/s1": s1.attachURL(), "/s2": s2.attachURL(), "/s3": s3.attachURL()}
	first := map[string]string{}
	per := map[string]int{}
	for i := 0; i < 40; i++ {
		sid := fmt.Sprintf("node%02d", i)
		st, path, url, b := place(sid)
		if st != 200 {
			t.Fatalf("%s: %d %s", sid, st, b)
		}
		parent := path[:strings.LastIndex(path, "/")]
		if parent == "/s3" {
			t.Fatalf("%s placed on s3, whose /readyz answers 503", sid)
		}
		if url != urls[parent] {
			t.Fatalf("%s placed under %s with attach URL %s, want %s", sid, parent, url, urls[parent])
		}
		first[sid] = parent
		per[parent]++
	}
	if per["/s1"] < 8 || per["/s2"] < 8 {
		t.Fatalf("40 nodes spread %v over two ready sentinels", per)
	}
	for sid, parent := range first { // the same node comes back to the same sentinel
		if _, path, _, _ := place(sid); !strings.HasPrefix(path, parent+"/") {
			t.Fatalf("%s placed under %s, then at %s", sid, parent, path)
		}
	}
	if n := s1.probes.Load() + s2.probes.Load() + s3.probes.Load(); n > 3 {
		t.Fatalf("%d readiness probes within the cache's second, want one per sentinel", n)
	}

	s1.status.Store(503) // s1 drains
	clock.Add(int64(2 * readyTTL))
	for sid, parent := range first {
		_, path, _, _ := place(sid)
		if !strings.HasPrefix(path, "/s2/") {
			t.Fatalf("%s (first on %s) placed at %s with s1 draining, want under /s2", sid, parent, path)
		}
	}

	s2.srv.Close() // s2 dies
	clock.Add(int64(2 * readyTTL))
	st, _, _, b := place("late")
	var body struct{ Code, Detail, Error string }
	_ = json.Unmarshal(b, &body)
	if st != http.StatusServiceUnavailable || !strings.Contains(string(b), CodeNoSentinel) {
		t.Fatalf("no sentinel ready: %d %s, want 503 %s", st, b, CodeNoSentinel)
	}
	for _, want := range []string{"s1: readyz 503", "s2: unreachable", "s3: readyz 503"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("refusal %s does not say %q", b, want)
		}
	}
}

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr string
	}{
		{"s1=ws://a/fame/v1/attach/ws/downstream, s2=wss://b/fame/v1/attach/ws/downstream", 2, ""},
		{"s1", 0, "not id=attach-url"},
		{"s1=http://a/x", 0, "want ws:// or wss://"},
		{"a/b=ws://a/x", 0, "invalid sentinel id"},
		{"s1=ws://a/x,s1=ws://b/x", 0, "twice"},
	} {
		got, err := parseTargets(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != tc.want || got[0].PhysicalPath != "/s1" {
			t.Fatalf("%q: %+v %v", tc.in, got, err)
		}
	}
}

// TestPlacementPrefersHome: a welcome service beside one sentinel of the cluster
// (TargetSystemID among the targets) places every node there while it is ready, and on the
// other ready sentinels, spread, once it is not.
func TestPlacementPrefersHome(t *testing.T) {
	s1, s2, s3 := newReadySentinel(t, 200), newReadySentinel(t, 200), newReadySentinel(t, 200)
	now := time.Now()
	var clock atomic.Int64
	f := newFixture(t, func(c *Config) {
		c.Verifier, c.AllowAnonymous, c.Grants = nil, true, nil
		c.AllowedLogicals = []string{"*.fame.fabric"}
		c.TargetSystemID, c.AttachURL = "s2", ""
		c.Targets = []Target{{SystemID: "s1", AttachURL: s1.attachURL()}, {SystemID: "s2", AttachURL: s2.attachURL()},
			{SystemID: "s3", AttachURL: s3.attachURL()}}
		c.Now = func() time.Time { return now.Add(time.Duration(clock.Load())) }
	})
	parents := func() map[string]int {
		per := map[string]int{}
		for i := 0; i < 30; i++ {
			resp, b := f.post(t, helloBody(t, &envelope.NodeHello{SystemID: fmt.Sprintf("n%02d", i), Logicals: []string{"fame.fabric"}}), "")
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			w, _ := decodeWelcome(t, b)
			per[w.AssignedPath[:strings.LastIndex(w.AssignedPath, "/")]]++
		}
		return per
	}
	if per := parents(); per["/s2"] != 30 {
		t.Fatalf("home s2 ready: placed %v, want all 30 under /s2", per)
	}
	s2.status.Store(503)
	clock.Add(int64(2 * readyTTL))
	if per := parents(); per["/s2"] != 0 || per["/s1"] < 5 || per["/s3"] < 5 {
		t.Fatalf("home s2 draining: placed %v, want none under /s2 and the rest spread", per)
	}
}

// TestPlacementProbesCollapse: hellos that come while a sentinel's readiness is being probed
// wait for that probe rather than each probing it: a burst of hellos while a sentinel dies
// costs one probe (up to readyTimeout), not one each.
func TestPlacementProbesCollapse(t *testing.T) {
	release := make(chan struct{})
	var probes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		probes.Add(1)
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	target := Target{SystemID: "s1", AttachURL: "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/fame/v1/attach/ws/downstream"}
	p := newPlacer([]Target{target}, "", &http.Client{Timeout: 10 * time.Second}, time.Now)

	const hellos = 20
	errs := make(chan error, hellos)
	for i := range hellos {
		go func() {
			_, err := p.pick(fmt.Sprintf("node-%d", i))
			errs <- err
		}()
	}
	// Every hello is either probing or waiting for the probe before it is released.
	deadline := time.Now().Add(5 * time.Second)
	for probes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range hellos {
		if err := <-errs; err != nil {
			t.Fatalf("pick: %v", err)
		}
	}
	if n := probes.Load(); n != 1 {
		t.Fatalf("%d readiness probes for %d concurrent hellos, want 1", n, hellos)
	}
}
