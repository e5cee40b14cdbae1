package node

import (
	"context"
	"testing"
)

func BenchmarkDecodeRequest(b *testing.B) {
	p := []byte(`{"jsonrpc":"2.0","id":"34peIerZWNdPWWkW","method":"add","params":{"x":3,"y":4}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallRoundTrip is client → fake sentinel → agent → client on loopback.
func BenchmarkCallRoundTrip(b *testing.B) {
	f := newFakeSentinel(&testing.T{})
	defer f.close()
	acfg, ccfg := testConfig(f, "fame.fabric"), testConfig(f)
	agent, err := Connect(context.Background(), acfg)
	if err != nil {
		b.Fatal(err)
	}
	defer agent.Close()
	if err := agent.Serve(context.Background(), "math@fame.fabric", testOps("a", nil)); err != nil {
		b.Fatal(err)
	}
	client, err := Connect(context.Background(), ccfg)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	params := map[string]int{"x": 3, "y": 4}
	b.ReportAllocs()
	for b.Loop() {
		var got int
		if err := client.Call(context.Background(), "math@fame.fabric", "add", params, &got); err != nil || got != 7 {
			b.Fatalf("add = %d, %v", got, err)
		}
	}
}
