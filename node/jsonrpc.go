package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// RemoteError is a JSON-RPC error object returned by the called operation. Operations may also
// return one to choose the code the caller sees.
type RemoteError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("remote error %d: %s", e.Code, e.Message)
}

// rpcRequest is the JSON-RPC request body the agent SDK sends.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// rpcResponse is one reply (or one stream item).
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *RemoteError    `json:"error,omitempty"`
}

var (
	errNotObject = errors.New("jsonrpc: payload is not an object")
	errNoMethod  = errors.New("jsonrpc: missing method")
	errNoResult  = errors.New("jsonrpc: response has neither result nor error")
)

// decodeRequest parses a JSON-RPC request and normalises its params (see normalizeParams).
// Errors carry the JSON-RPC code to answer with.
func decodeRequest(payload []byte) (*rpcRequest, *RemoteError) {
	var req rpcRequest
	if err := strictObject(payload, &req); err != nil {
		return nil, &RemoteError{Code: CodeParseError, Message: "Parse error: " + err.Error()}
	}
	if req.Method == "" {
		return &req, &RemoteError{Code: CodeInvalidRequest, Message: "Invalid Request: " + errNoMethod.Error()}
	}
	p, err := normalizeParams(req.Params)
	if err != nil {
		return &req, &RemoteError{Code: CodeInvalidParams, Message: "Invalid params: " + err.Error()}
	}
	req.Params = p
	return &req, nil
}

// normalizeParams turns the shapes the reference SDK sends into the flat object operations
// read: absent or null → {}; a flat object stays as it is; {"args":[...],"kwargs":{...}}
// (the SDK's positional form) becomes kwargs when args is empty, the single argument when it
// is one object and kwargs is empty, and otherwise the args array itself.
func normalizeParams(p json.RawMessage) (json.RawMessage, error) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	switch p[0] {
	case '[':
		return p, nil
	case '{':
	default:
		return nil, errors.New("params must be an object or an array")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, err
	}
	args, hasArgs := m["args"]
	kwargs, hasKw := m["kwargs"]
	if !hasArgs && !hasKw {
		return p, nil
	}
	if len(m) != btoi(hasArgs)+btoi(hasKw) {
		return p, nil // a flat object that merely has a key named args or kwargs
	}
	var list []json.RawMessage
	if hasArgs && !isNullJSON(args) {
		if err := json.Unmarshal(args, &list); err != nil {
			return nil, errors.New("args must be an array")
		}
	}
	kwEmpty := !hasKw || isNullJSON(kwargs) || bytes.Equal(bytes.Join(bytes.Fields(kwargs), nil), []byte("{}"))
	if hasKw && !isNullJSON(kwargs) && bytes.TrimSpace(kwargs)[0] != '{' {
		return nil, errors.New("kwargs must be an object")
	}
	switch {
	case len(list) == 0 && kwEmpty:
		return json.RawMessage("{}"), nil
	case len(list) == 0:
		return kwargs, nil
	case len(list) == 1 && kwEmpty && len(bytes.TrimSpace(list[0])) > 0 && bytes.TrimSpace(list[0])[0] == '{':
		return list[0], nil
	case kwEmpty:
		return args, nil
	}
	return p, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isNullJSON(b []byte) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// decodeResponse parses one reply payload.
func decodeResponse(payload []byte) (*rpcResponse, error) {
	var r rpcResponse
	if err := strictObject(payload, &r); err != nil {
		return nil, err
	}
	if r.Error == nil && r.Result == nil {
		// "result":null decodes to a nil RawMessage too; tell them apart by looking.
		if !hasKey(payload, "result") {
			return nil, errNoResult
		}
		r.Result = json.RawMessage("null")
	}
	return &r, nil
}

func strictObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errNotObject
	}
	return json.Unmarshal(b, v)
}

func hasKey(obj []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// encodeRequest builds the request payload; params nil sends {} (a flat, empty object).
func encodeRequest(id, method string, params any) (json.RawMessage, error) {
	var p json.RawMessage
	switch v := params.(type) {
	case nil:
		p = json.RawMessage("{}")
	case json.RawMessage:
		p = v
	default:
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("encode params of %s: %w", method, err)
		}
		p = b
	}
	if out, ok := appendRequest(id, method, p); ok {
		return out, nil
	}
	idj, _ := json.Marshal(id)
	return json.Marshal(rpcRequest{JSONRPC: "2.0", ID: idj, Method: method, Params: p})
}

// appendRequest builds the request body by hand when that gives json.Marshal's exact bytes:
// plain ASCII id and method, and params without the characters Marshal HTML-escapes. It
// saves the reflective encode and a second validation pass over params.
func appendRequest(id, method string, params json.RawMessage) (json.RawMessage, bool) {
	if !plainJSONString(id) || !plainJSONString(method) {
		return nil, false
	}
	for _, c := range params {
		if c == '<' || c == '>' || c == '&' || c == 0xe2 {
			return nil, false
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(id)+len(method)+len(params)+48))
	buf.WriteString(`{"jsonrpc":"2.0","id":"`)
	buf.WriteString(id)
	buf.WriteString(`","method":"`)
	buf.WriteString(method)
	buf.WriteString(`","params":`)
	if json.Compact(buf, params) != nil {
		return nil, false // the general path reports the error
	}
	buf.WriteByte('}')
	return buf.Bytes(), true
}

// plainJSONString reports whether s encodes as itself between quotes under json.Marshal.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// encodeResult builds a success reply; a nil result is sent as "result":null.
func encodeResult(id json.RawMessage, result any) (json.RawMessage, error) {
	var r json.RawMessage
	switch v := result.(type) {
	case nil:
		r = json.RawMessage("null")
	case json.RawMessage:
		r = v
	default:
		b, err := json.Marshal(result)
		if err != nil {
			return nil, err
		}
		r = b
	}
	return marshalResponse(id, r, nil)
}

func encodeError(id json.RawMessage, e *RemoteError) (json.RawMessage, error) {
	return marshalResponse(id, nil, e)
}

func marshalResponse(id, result json.RawMessage, e *RemoteError) (json.RawMessage, error) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	type withResult struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
	}
	type withError struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *RemoteError    `json:"error"`
	}
	if e != nil {
		return json.Marshal(withError{"2.0", id, e})
	}
	return json.Marshal(withResult{"2.0", id, result})
}

// toRemoteError maps an operation's error to the JSON-RPC error the caller sees.
func toRemoteError(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	if errors.Is(err, ErrInvalidParams) {
		return &RemoteError{Code: CodeInvalidParams, Message: err.Error()}
	}
	return &RemoteError{Code: CodeInternalError, Message: err.Error()}
}
