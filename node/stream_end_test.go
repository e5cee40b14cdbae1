package node

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/fame-go/fame/envelope"
)

// TestStreamItemPythonEnd decodes the last item and the end of a fib_stream answered by the
// reference Python agent SDK (naylence-agent-sdk 0.4.12), captured through our sentinel: the end
// is a response with neither result nor error, and must read as io.EOF, not as a broken stream.
func TestStreamItemPythonEnd(t *testing.T) {
	f, err := os.Open("testdata/python-stream-end.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var payloads [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		env, err := envelope.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("decode captured envelope: %v", err)
		}
		fr, err := env.DecodeFrame()
		if err != nil {
			t.Fatalf("decode captured frame: %v", err)
		}
		data, ok := fr.(*envelope.Data)
		if !ok {
			t.Fatalf("captured frame is %T, want *envelope.Data", fr)
		}
		payloads = append(payloads, data.Payload)
	}
	if len(payloads) != 2 {
		t.Fatalf("%d captured payloads, want 2", len(payloads))
	}
	item, err := streamItem(payloads[0])
	if err != nil || string(item) != "34" {
		t.Fatalf("last item = %s, %v; want 34", item, err)
	}
	if _, err := streamItem(payloads[1]); err != io.EOF {
		t.Fatalf("end of a Python stream = %v, want io.EOF", err)
	}
	// The TS SDK's end and a remote error keep their meaning.
	if _, err := streamItem([]byte(`{"jsonrpc":"2.0","id":"a","result":null}`)); err != io.EOF {
		t.Fatalf("result null = %v, want io.EOF", err)
	}
	_, err = streamItem([]byte(`{"jsonrpc":"2.0","id":"a","error":{"code":-32000,"message":"boom"}}`))
	if _, ok := err.(*RemoteError); !ok {
		t.Fatalf("error reply = %v (%T), want *RemoteError", err, err)
	}
	if _, err := streamItem(json.RawMessage(`[1]`)); err == nil {
		t.Fatal("a non-object stream item decoded without error")
	}
}
