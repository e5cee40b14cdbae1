package e2e

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/admission/welcome"
	"github.com/fame-go/fame/examples/math/mathagent"
	"github.com/fame-go/fame/node"
	"github.com/fame-go/fame/node/admit"
)

// welcomeMetric reads one sample of the welcome service's /metrics.
func (fs *strictStack) welcomeMetric(t *testing.T, sample string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	fs.welcome.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, welcome.MetricsPath, nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return v
		}
	}
	return "0"
}

// The math client's credential tries to become a replica: attach under a
// replica's system id, or get the math domain to bind math@fame.fabric. The
// welcome service refuses both by the client's grant (403, counted), the
// client admitted as itself cannot bind the math address at the sentinel
// (its ticket carries no logicals), and the replicas go on serving a real
// client.
func TestFullStackClientCannotBecomeReplica(t *testing.T) {
	fs := newStack(t, stackOptions{tls: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs.mathReplica(t, ctx, "replica1", nil)
	fs.mathReplica(t, ctx, "replica2", nil)

	attack := func(systemID string, logicals []string, code string) {
		t.Helper()
		sample := `fame_welcome_refused_total{reason="` + code + `"}`
		before := fs.welcomeMetric(t, sample)
		cfg := fs.clientConfig(logicals, nil) // the client's credential
		cfg.SystemID = systemID
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		defer acancel()
		n, err := node.Connect(actx, cfg)
		if err == nil {
			n.Close()
			t.Fatalf("client credential attached as %q with %q", systemID, logicals)
		}
		var he *admit.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Code != code {
			t.Fatalf("attach as %q with %q: %v, want HTTP 403 %s", systemID, logicals, err, code)
		}
		if after := fs.welcomeMetric(t, sample); after == before {
			t.Fatalf("%s stayed at %s", sample, after)
		}
	}
	attack("math-replica1", nil, welcome.CodeSystemIDNotGranted)
	attack("math-replica9", []string{"*.fame.fabric"}, welcome.CodeSystemIDNotGranted)
	attack("", []string{"fame.fabric"}, welcome.CodeLogicalNotGranted)
	attack("", []string{"*.fame.fabric"}, welcome.CodeLogicalNotGranted)

	// Admitted as itself, the client's ticket carries no logicals: binding
	// the math address (exact, or the pool) is refused by the sentinel.
	cn, err := node.Connect(ctx, fs.clientConfig(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	for _, addr := range []string{mathagent.Address, "math@math-replica1.fame.fabric"} {
		err := cn.Serve(ctx, addr, mathagent.Ops("intruder"))
		var ne *node.NackError
		if !errors.As(err, &ne) || ne.Code != "UNAUTHORIZED" {
			t.Fatalf("client bind %s: %v, want a nack UNAUTHORIZED", addr, err)
		}
	}

	// The replicas still serve: 10 calls of a real client, none answered
	// by the intruder.
	c := mathClient{t: t, n: cn}
	for i := 0; i < 10; i++ {
		var who string
		if err := cn.Call(ctx, mathagent.Address, "whoami", nil, &who); err != nil || (who != "replica1" && who != "replica2") {
			t.Fatalf("call %d: whoami = %q, %v", i, who, err)
		}
		if err := c.binary(ctx, "add", int64(i), 4, int64(i)+4); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}
