package node

import (
	"encoding/json"
	"testing"
)

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":"34peIerZWNdPWWkW","method":"add","params":{"x":3,"y":4}}`,
		`{"jsonrpc":"2.0","id":"0BOCYNy7y9lCGdjk","method":"whoami","params":{"args":[]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":{"args":[{"n":1}],"kwargs":{}}}`,
		`{"method":"m","params":{"args":[1,2],"kwargs":null}}`,
		`{"method":"m","params":[1]}`, `null`, `{`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, rerr := decodeRequest(b)
		if rerr == nil {
			if req.Method == "" {
				t.Fatal("accepted a request without a method")
			}
			if !json.Valid(req.Params) {
				t.Fatalf("normalised params are not JSON: %q", req.Params)
			}
			if c := req.Params[0]; c != '{' && c != '[' {
				t.Fatalf("normalised params are neither object nor array: %q", req.Params)
			}
		} else if rerr.Code > -32600 || rerr.Code < -32700 {
			t.Fatalf("non-standard code %d", rerr.Code)
		}
		// Whatever came in, the error reply must encode.
		if rerr != nil {
			if _, err := encodeError(nil, rerr); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":"a","result":7}`,
		`{"jsonrpc":"2.0","id":"a","result":null}`,
		`{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"x","data":{"method":"m"}}}`,
		`{"id":"a"}`, `7`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err != nil {
			return
		}
		if r.Error == nil && !json.Valid(r.Result) {
			t.Fatalf("accepted a response with result %q", r.Result)
		}
	})
}
