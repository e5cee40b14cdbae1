package cluster

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keyLog records what a KeyDirectory's Watch delivers.
type keyLog struct {
	mu   sync.Mutex
	keys map[string]SharedKey
	puts map[string]int
}

func watchKeys(d *KeyDirectory) *keyLog {
	l := &keyLog{keys: map[string]SharedKey{}, puts: map[string]int{}}
	d.Watch(func(k SharedKey, deleted bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if deleted {
			delete(l.keys, k.Kid)
			return
		}
		l.keys[k.Kid] = k
		l.puts[k.Kid]++
	})
	return l
}

func (l *keyLog) get(kid string) (SharedKey, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, ok := l.keys[kid]
	return k, ok
}

func (l *keyLog) putsOf(kid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.puts[kid]
}

// TestKeyDirectory: a key published on one sentinel reaches another's watch with its owner
// (sentinel, path, JWK), is not delivered again by the refreshes that keep its TTL alive, and
// leaves on withdrawal; the publisher's own watch never sees its own keys; a key for a path
// outside the publishing sentinel is refused at Publish.
func TestKeyDirectory(t *testing.T) {
	t.Parallel()
	a, c := shared.members[0].Keys, shared.members[2].Keys
	onA, onC := watchKeys(a), watchKeys(c)
	jwk := json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"kd-1","use":"sig"}`)
	if err := a.Publish(SharedKey{Kid: "kd-1", Path: "/s0/r1", JWK: jwk}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "kd-1 on s2", func() bool { _, ok := onC.get("kd-1"); return ok })
	t.Logf("a published key reached another sentinel's watch in %v", took)
	k, _ := onC.get("kd-1")
	if k.Sentinel != "s0" || k.Path != "/s0/r1" || string(k.JWK) != string(jwk) {
		t.Fatalf("s2 got %+v", k)
	}
	// Refreshes (every DirectoryTTL/3, 1 s here) are not delivered again.
	time.Sleep(shared.base.DirectoryTTL)
	if n := onC.putsOf("kd-1"); n != 1 {
		t.Fatalf("kd-1 delivered %d times over a TTL of refreshes, want once", n)
	}
	if _, ok := onA.get("kd-1"); ok {
		t.Fatal("the publisher's watch delivered its own key")
	}
	a.Withdraw("kd-1")
	eventually(t, 5*time.Second, "kd-1 withdrawn on s2", func() bool { _, ok := onC.get("kd-1"); return !ok })

	for _, bad := range []SharedKey{
		{Kid: "kd-2", Path: "/s1/r1", JWK: jwk}, // another sentinel's subtree
		{Kid: "kd-3", Path: "/s0x/r1", JWK: jwk},
		{Kid: "", Path: "/s0/r1", JWK: jwk},
		{Kid: "kd-4", Path: "/s0/r1"},
	} {
		if err := a.Publish(bad); !errors.Is(err, ErrBadSharedKey) {
			t.Errorf("Publish(%+v) = %v, want ErrBadSharedKey", bad, err)
		}
	}
}

// TestKeyDirectoryRefusesForeignPath: an entry written straight into the bucket by a member
// for a path outside its own sentinel (a buggy or compromised peer) is not delivered.
func TestKeyDirectoryRefusesForeignPath(t *testing.T) {
	t.Parallel()
	c := shared.members[2].Keys
	onC := watchKeys(c)
	js, err := jetstream.New(shared.members[1].Conn)
	if err != nil {
		t.Fatal(err)
	}
	jwk := `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"kf","use":"sig"}`
	ctx := t.Context()
	kv, err := js.KeyValue(ctx, KeysBucket("shared"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, sharedKeyKey("kf-foreign"), []byte(`{"s":"s1","p":"/s0/victim","k":`+jwk+`}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, sharedKeyKey("kf-own"), []byte(`{"s":"s1","p":"/s1/r","k":`+jwk+`}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "kf-own on s2", func() bool { _, ok := onC.get("kf-own"); return ok })
	if _, ok := onC.get("kf-foreign"); ok {
		t.Fatal("a key for another sentinel's path was delivered")
	}
}

// TestKeyDirectoryWithdrawKeepsMovedKey: a node that moved from s0 to s1 keeps its kid; s0's
// later withdrawal (its old connection closing) does not delete s1's entry.
func TestKeyDirectoryWithdrawKeepsMovedKey(t *testing.T) {
	t.Parallel()
	a, b, c := shared.members[0].Keys, shared.members[1].Keys, shared.members[2].Keys
	onC := watchKeys(c)
	jwk := json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"km","use":"sig"}`)
	if err := a.Publish(SharedKey{Kid: "km", Path: "/s0/mover", JWK: jwk}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "km from s0 on s2", func() bool { k, ok := onC.get("km"); return ok && k.Sentinel == "s0" })
	if err := b.Publish(SharedKey{Kid: "km", Path: "/s1/mover", JWK: jwk}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "km from s1 on s2", func() bool { k, ok := onC.get("km"); return ok && k.Sentinel == "s1" })
	a.Withdraw("km")
	time.Sleep(time.Second)
	if k, ok := onC.get("km"); !ok || k.Sentinel != "s1" {
		t.Fatalf("after s0's withdrawal s2 has %+v %v, want s1's entry", k, ok)
	}
	b.Withdraw("km")
	eventually(t, 5*time.Second, "km withdrawn by s1", func() bool { _, ok := onC.get("km"); return !ok })
}
