package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/node"
)

// TestConnectSkipsUnreachableFirstURL: a node given the list of a cluster's sentinels
// (FAME_DIRECT_ADMISSION_URL="a,b") whose first sentinel is down attaches to the next one at
// start, as it would on a re-attach; a list of only unreachable sentinels fails with the
// dial error after trying each once.
func TestConnectSkipsUnreachableFirstURL(t *testing.T) {
	f := newFabric(t, nil)
	dead := fmt.Sprintf("ws://127.0.0.1:%d/fame/v1/attach/ws/downstream", freePorts(t, 1)[0])
	connect := func(list string) (*node.Node, error) {
		cfg, err := config.NodeFrom(config.MapEnv(map[string]string{"FAME_DIRECT_ADMISSION_URL": list}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return node.Connect(ctx, cfg)
	}
	n, err := connect(dead + "," + f.url())
	if err != nil {
		t.Fatalf("connect with the first sentinel down: %v", err)
	}
	defer n.Close()
	if p := n.AssignedPath(); !strings.HasPrefix(p, "/") {
		t.Fatalf("attached at %q", p)
	}
	dead2 := fmt.Sprintf("ws://127.0.0.1:%d/fame/v1/attach/ws/downstream", freePorts(t, 1)[0])
	if n2, err := connect(dead + "," + dead2); err == nil {
		n2.Close()
		t.Fatal("connected with every sentinel of the list down")
	}
}
