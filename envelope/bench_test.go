package envelope

import (
	"encoding/json"
	"testing"
)

// benchData is a typical ~500-byte Data envelope (an RPC request with a small payload).
var benchData = []byte(`{"version":"1.0","id":"HhuivJJuQ5gDQDsM","sid":"4lEOwRnZ5AggQ7Pc3eNzFk","traceId":"5bPds4cddbmEdcwH","to":"math@fame.fabric","replyTo":"__rpc__0oz6q8a7DfrosHAS@/WTps2sKZfgi0a5kw/jCPsDnt3zXGzmHvY","rtype":2,"corrId":"34peIerZWNdPWWkW","flowId":"8G61SDKE5aDqL3mA","seqId":1,"flowFlags":0,"frame":{"type":"Data","payload":{"jsonrpc":"2.0","id":"34peIerZWNdPWWkW","method":"add","params":{"x":3,"y":4,"note":"a short note to bring this envelope to a typical size of about five hundred bytes"}}},"ts":"2026-11-23T03:40:53.023Z"}`)

func BenchmarkParseHeader(b *testing.B) {
	var h Header
	b.SetBytes(int64(len(benchData)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseHeader(benchData, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	b.SetBytes(int64(len(benchData)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(benchData); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibDecode is the baseline: encoding/json into a struct with raw frame.
func BenchmarkStdlibDecode(b *testing.B) {
	type env struct {
		Version, ID, Sid, TraceID, To, ReplyTo, CorrID, FlowID, Ts string
		Rtype, SeqID, FlowFlags                                    int
		Frame                                                      json.RawMessage
	}
	b.SetBytes(int64(len(benchData)))
	b.ReportAllocs()
	for b.Loop() {
		var e env
		if err := json.Unmarshal(benchData, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestamp(b *testing.B) {
	var h Header
	if err := ParseHeader(benchData, &h); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchData)))
	b.ReportAllocs()
	for b.Loop() {
		buf = Restamp(buf[:0], benchData, &h, 12345, 0)
	}
}

func BenchmarkMarshal(b *testing.B) {
	e, err := Decode(benchData)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = e.AppendMarshal(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSecureDigest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		SecureDigest("/WTps2sKZfgi0a5kw/jCPsDnt3zXGzmHvY")
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewID()
	}
}

func BenchmarkNewIDParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			NewID()
		}
	})
}
