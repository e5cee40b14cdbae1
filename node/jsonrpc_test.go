package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestNormalizeParams(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{``, `{}`, false},
		{`null`, `{}`, false},
		{`{"x":3,"y":4}`, `{"x":3,"y":4}`, false},
		{`{"args":[]}`, `{}`, false},
		{`{"args":[],"kwargs":{}}`, `{}`, false},
		{`{"args":[],"kwargs":{"x":1}}`, `{"x":1}`, false},
		{`{"kwargs":{"x":1}}`, `{"x":1}`, false},
		{`{"args":[{"n":10}]}`, `{"n":10}`, false},
		{`{"args":[1,2]}`, `[1,2]`, false},
		{`{"args":[1],"kwargs":{"y":2}}`, `{"args":[1],"kwargs":{"y":2}}`, false},
		{`{"args":[1],"other":2}`, `{"args":[1],"other":2}`, false},
		{`[1,2]`, `[1,2]`, false},
		{`{"args":5}`, ``, true},
		{`{"args":[],"kwargs":3}`, ``, true},
		{`"str"`, ``, true},
		{`42`, ``, true},
	}
	for _, tt := range tests {
		got, err := normalizeParams(json.RawMessage(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("normalizeParams(%s) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && string(got) != tt.want {
			t.Errorf("normalizeParams(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		in       string
		wantCode int // 0: ok
		method   string
	}{
		{`{"jsonrpc":"2.0","id":"a","method":"add","params":{"x":1}}`, 0, "add"},
		{`{"jsonrpc":"2.0","id":"a","method":"whoami","params":{"args":[]}}`, 0, "whoami"},
		{`{"jsonrpc":"2.0","id":"a","method":"m"}`, 0, "m"},
		{`{"jsonrpc":"2.0","id":"a"}`, CodeInvalidRequest, ""},
		{`{"jsonrpc":"2.0","id":"a","method":"m","params":7}`, CodeInvalidParams, "m"},
		{`[1]`, CodeParseError, ""},
		{`{"method":`, CodeParseError, ""},
		{`{"method":5}`, CodeParseError, ""},
	}
	for _, tt := range tests {
		req, rerr := decodeRequest([]byte(tt.in))
		code := 0
		if rerr != nil {
			code = rerr.Code
		}
		if code != tt.wantCode {
			t.Errorf("decodeRequest(%s) code = %d, want %d (%v)", tt.in, code, tt.wantCode, rerr)
		}
		if tt.wantCode == 0 && req.Method != tt.method {
			t.Errorf("decodeRequest(%s) method = %q", tt.in, req.Method)
		}
	}
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		in         string
		wantResult string
		wantErr    int // JSON-RPC error code, or -1 for a decode failure
	}{
		{`{"jsonrpc":"2.0","id":"a","result":7}`, `7`, 0},
		{`{"jsonrpc":"2.0","id":"a","result":null}`, `null`, 0},
		{`{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"nope","data":{"method":"x"}}}`, ``, CodeMethodNotFound},
		{`{"jsonrpc":"2.0","id":"a"}`, ``, -1},
		{`"x"`, ``, -1},
	}
	for _, tt := range tests {
		r, err := decodeResponse([]byte(tt.in))
		switch {
		case tt.wantErr == -1:
			if err == nil {
				t.Errorf("decodeResponse(%s) accepted", tt.in)
			}
		case err != nil:
			t.Errorf("decodeResponse(%s): %v", tt.in, err)
		case tt.wantErr != 0:
			if r.Error == nil || r.Error.Code != tt.wantErr {
				t.Errorf("decodeResponse(%s) error = %+v", tt.in, r.Error)
			}
		default:
			if string(r.Result) != tt.wantResult {
				t.Errorf("decodeResponse(%s) result = %s", tt.in, r.Result)
			}
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	p, err := encodeRequest("c1", "add", map[string]int{"x": 3, "y": 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"jsonrpc":"2.0","id":"c1","method":"add","params":{"x":3,"y":4}}`; string(p) != want {
		t.Errorf("encodeRequest = %s, want %s", p, want)
	}
	r, _ := encodeResult(json.RawMessage(`"c1"`), nil)
	if want := `{"jsonrpc":"2.0","id":"c1","result":null}`; string(r) != want {
		t.Errorf("encodeResult(nil) = %s", r)
	}
	e, _ := encodeError(nil, &RemoteError{Code: -32603, Message: "m"})
	if want := `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"m"}}`; string(e) != want {
		t.Errorf("encodeError = %s", e)
	}
	if _, err := encodeRequest("c", "m", make(chan int)); err == nil {
		t.Error("encodeRequest accepted an unencodable param")
	}
}

func TestToRemoteError(t *testing.T) {
	custom := &RemoteError{Code: 42, Message: "custom"}
	tests := []struct {
		err  error
		code int
	}{
		{custom, 42},
		{fmt.Errorf("wrapped: %w", custom), 42},
		{fmt.Errorf("%w: x", ErrInvalidParams), CodeInvalidParams},
		{errors.New("plain"), CodeInternalError},
	}
	for _, tt := range tests {
		if got := toRemoteError(tt.err).Code; got != tt.code {
			t.Errorf("toRemoteError(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestNackErrorIs(t *testing.T) {
	tests := []struct {
		code      string
		isNoRoute bool
	}{{"NO_ROUTE", true}, {"ROUTE_CONNECTOR_CLOSED", false}, {"UNAUTHORIZED", false}}
	for _, tt := range tests {
		err := fmt.Errorf("call: %w", &NackError{Code: tt.code})
		if errors.Is(err, ErrNoRoute) != tt.isNoRoute || !errors.Is(err, ErrNack) {
			t.Errorf("%s: Is(ErrNoRoute)=%v Is(ErrNack)=%v", tt.code, errors.Is(err, ErrNoRoute), errors.Is(err, ErrNack))
		}
	}
}
