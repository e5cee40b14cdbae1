package cluster

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// FuzzLinkHello: whatever a dialer sends as its hello, checkHello does not panic, and it
// accepts only a hello that names this cluster, this sentinel as the receiver, another valid
// sentinel id as the sender, a token, and the cluster's credentials.
func FuzzLinkHello(f *testing.F) {
	cfg := Config{Name: "prod", SentinelID: "s1", Auth: Auth{User: "u", Password: "p"}}
	good, _ := json.Marshal(linkHello{V: linkVersion, Cluster: "prod", From: "s2", To: "s1", User: "u", Password: "p", Token: "t"})
	f.Add(good)
	f.Add([]byte(`{"v":1,"cluster":"prod","from":"s1","to":"s1","user":"u","password":"p","token":"t"}`))
	f.Add([]byte(`{"v":1,"cluster":"prod","from":"s2","to":"s1","user":"u","password":"","token":"t"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"from":"a.b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, reason, _ := checkHello(b, cfg)
		if reason != "" {
			return
		}
		if h.V != linkVersion || h.Cluster != cfg.Name || h.To != cfg.SentinelID || h.From == cfg.SentinelID ||
			!validID(h.From) || h.Token == "" || len(h.Token) > 64 || h.User != "u" || h.Password != "p" {
			t.Fatalf("accepted %q: %+v", b, h)
		}
	})
}

// FuzzLinkFrame: readFrame on any bytes does not panic, refuses empty and oversize frames
// before reading them, and returns exactly the frame its header announced.
func FuzzLinkFrame(f *testing.F) {
	frame := func(n uint32, body []byte) []byte {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], n)
		return append(hdr[:], body...)
	}
	f.Add(frame(3, []byte("abc")))
	f.Add(frame(0, nil))
	f.Add(frame(maxHelloFrame+1, []byte("x")))
	f.Add(frame(10, []byte("short")))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readFrame(bytes.NewReader(b), maxHelloFrame)
		if err != nil {
			return
		}
		if len(b) < 4 {
			t.Fatalf("a frame from %d bytes", len(b))
		}
		n := binary.BigEndian.Uint32(b[:4])
		if n == 0 || n > maxHelloFrame || int(n) != len(got) || !bytes.Equal(got, b[4:4+n]) {
			t.Fatalf("frame of %d bytes from header %d", len(got), n)
		}
	})
}
