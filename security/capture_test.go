package security

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/fame-go/fame/envelope"
)

type captureLine struct {
	Dir  string `json:"dir"`
	Kind string `json:"kind"`
	Data string `json:"data"`
}

func readCapture(t *testing.T, path string) []*envelope.Envelope {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*envelope.Envelope
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l captureLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if l.Kind != "message" {
			continue
		}
		env, err := envelope.Decode([]byte(l.Data))
		if err != nil {
			t.Fatalf("%s: decode: %v", path, err)
		}
		out = append(out, env)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// learnKeys fills a key store the way the sentinel and the peers learn keys in a capture:
// NodeAttach keys belong to the attaching node's assigned path (known from the ack),
// NodeAttachAck keys to the sentinel's path, KeyAnnounce keys to frame.physicalPath.
func learnKeys(t *testing.T, ks *KeyStore, envs []*envelope.Envelope) {
	t.Helper()
	var attachKeys []json.RawMessage
	for _, env := range envs {
		f, err := env.DecodeFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch fr := f.(type) {
		case *envelope.NodeAttach:
			attachKeys = fr.Keys
		case *envelope.NodeAttachAck:
			if _, err := ks.AddRaw(fr.Keys, fr.TargetPhysicalPath); err != nil {
				t.Fatalf("ack keys: %v", err)
			}
			if _, err := ks.AddRaw(attachKeys, fr.AssignedPath); err != nil {
				t.Fatalf("attach keys: %v", err)
			}
		case *envelope.KeyAnnounce:
			if _, err := ks.AddRaw(fr.Keys, fr.PhysicalPath); err != nil {
				t.Fatalf("announced keys: %v", err)
			}
		}
	}
}

// TestCaptureSignatures verifies every signed envelope the TS runtime produced in the overlay
// captures, with full (payload digest recomputed) and shallow verification, and checks that
// tampering with each one is detected.
func TestCaptureSignatures(t *testing.T) {
	files, err := filepath.Glob("testdata/captures/*/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no capture files: %v", err)
	}
	verified := 0
	for _, file := range files {
		envs := readCapture(t, file)
		ks := NewKeyStore(KeyStoreOptions{})
		learnKeys(t, ks, envs)
		for _, env := range envs {
			if len(env.Sec) == 0 {
				continue
			}
			if _, err := ks.Verify(env, false); err != nil {
				t.Errorf("%s %s %s: %v", file, env.ID, env.FrameType(), err)
				continue
			}
			if _, err := ks.Verify(env, true); err != nil {
				t.Errorf("%s %s shallow: %v", file, env.ID, err)
				continue
			}
			tampered := *env
			tampered.CorrID += "x"
			if _, err := ks.Verify(&tampered, false); err == nil {
				t.Errorf("%s %s: tampered corrId verified", file, env.ID)
			}
			verified++
		}
	}
	const want = 160 // 4 scenarios x (22 agent-side + 18 client-side) signed envelopes
	if verified != want {
		t.Fatalf("verified %d signed envelopes, want %d", verified, want)
	}
	t.Logf("verified %d captured signatures from %d files", verified, len(files))
}
