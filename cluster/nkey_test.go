package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func writeSeed(t *testing.T, dir, name string) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".nk")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNkeyClientsSingleNode: client links authenticated by an nkey (routes
// still by password), in a cluster of one (R1), which is also the smallest
// deployment: the store works, and clients with the password or another
// nkey are refused.
func TestNkeyClientsSingleNode(t *testing.T) {
	t.Parallel() // mostly waiting: runs beside the other slow ones
	dir := t.TempDir()
	seed, other := writeSeed(t, dir, "sentinel"), writeSeed(t, dir, "other")
	addr := freePort(t)
	cfg := Config{
		Name: "solo", SentinelID: "solo-1", Listen: addr, Routes: []string{"nats-route://" + addr},
		DataDir: filepath.Join(dir, "data"), TLS: shared.pki.good,
		Auth: Auth{User: testUser, Password: testPass, NkeySeedFile: seed},
	}
	m, err := Open(cfg, testLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Config.Replicas != 1 {
		t.Fatalf("replicas %d for a cluster of one", m.Config.Replicas)
	}
	select {
	case <-m.Store.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("bucket not bound")
	}
	done := make(chan Result, 1)
	m.Store.Create(Channel, "cid", Binding{Replica: "r", Sentinel: "solo-1"}, func(r Result) { done <- r })
	if r := <-done; !r.Won || r.Binding.Revision == 0 {
		t.Fatalf("create on a cluster of one: %+v", r)
	}

	good, err := TLSConfig(shared.pki.good)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := nats.NkeyOptionFromSeed(other)
	if err != nil {
		t.Fatal(err)
	}
	rightKey, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	url := m.Embedded.ClientURL()
	for name, opt := range map[string]nats.Option{
		"the password (routes only)": nats.UserInfo(testUser, testPass),
		"another nkey":               otherKey,
	} {
		nc, err := nats.Connect(url, nats.NoReconnect(), nats.Secure(good), opt)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: %v, want an authorization error", name, err)
		}
	}
	nc, err := nats.Connect(url, nats.NoReconnect(), nats.Secure(good), rightKey)
	if err != nil {
		t.Fatalf("the right nkey was refused: %v", err)
	}
	nc.Close()
}
