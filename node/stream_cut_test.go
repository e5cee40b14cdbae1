package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// TestStreamCutBySecureCloseAfterItems: a SecureClose for the channel of a stream that has
// already delivered items ends the stream with ErrConnectionLost. Found by the chaos harness
// (#20): the stream was re-sent over a new channel like a unary call, ran again from its first
// item, and the caller read 0, 1, 1, 2 ... a second time in the middle of the first run.
func TestStreamCutBySecureCloseAfterItems(t *testing.T) {
	f := overlaySentinel(t)
	acfg := testConfig(f, "fame.fabric")
	overlay("channel")(&acfg)
	agent := connect(t, acfg)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ops := Ops{"count": Streaming(func(ctx context.Context, _ json.RawMessage, emit func(any) error) error {
		if err := emit(1); err != nil {
			return err
		}
		select { // the second item waits for the test
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return emit(2)
	})}
	if err := agent.Serve(context.Background(), "math@fame.fabric", ops); err != nil {
		t.Fatal(err)
	}
	ccfg := testConfig(f)
	overlay("channel")(&ccfg)
	client := connect(t, ccfg)
	st, err := client.Stream(context.Background(), "math@fame.fabric", "count", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if item, err := st.Next(context.Background()); err != nil || string(item) != "1" {
		t.Fatalf("first item = %s, %v", item, err)
	}
	var cid string
	for _, e := range framesOf(f, client.SystemID(), envelope.TypeData) {
		cid = encOf(t, e).Kid
	}
	f.sendTo(client.SystemID(), "__sys__@"+client.AssignedPath(), &envelope.SecureClose{CID: cid, Reason: "replica left"})
	item, err := st.Next(context.Background())
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("after the SecureClose: item %s, err %v; want ErrConnectionLost", item, err)
	}
	if _, err := st.Next(context.Background()); err != io.EOF {
		t.Errorf("Next after the cut = %v, want io.EOF", err)
	}
	if n := len(framesOf(f, client.SystemID(), envelope.TypeData)); n != 1 {
		t.Errorf("client sent %d requests, want 1 (no re-send of a started stream)", n)
	}
}
