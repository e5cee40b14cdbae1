package security

import (
	"testing"
)

// Expected outputs below were produced by CPython 3 json.dumps / Node JSON.stringify on the
// same inputs; they are the reference behaviour, not outputs of this package.
func TestCanonicalJSONPython(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"appendix A.2 floats", `{"a":1.0,"b":1e16,"c":1e-5,"d":0.1,"e":[true,null]}`, `{"a":1.0,"b":1e+16,"c":1e-05,"d":0.1,"e":[true,null]}`},
		{"appendix A.2 payload", `{"jsonrpc":"2.0","id":"req-1","method":"add","params":{"y":4,"x":3,"note":"héllo"}}`,
			`{"id":"req-1","jsonrpc":"2.0","method":"add","params":{"note":"héllo","x":3,"y":4}}`},
		{"numbers", `[1.10,1E5,-0,-0.0,0.0001,0.00001,1e15,123456789012345678901234567890,1.5e300,3.141592653589793238,5e-324,1e400,-1e400,2.5E-7,100.0,1e21,1e22,0.1e2]`,
			`[1.1,100000.0,0,-0.0,0.0001,1e-05,1000000000000000.0,123456789012345678901234567890,1.5e+300,3.141592653589793,5e-324,Infinity,-Infinity,2.5e-07,100.0,1e+21,1e+22,10.0]`},
		{"strings and key order", `{"z":"\u2028<>&\u007f\u0001\n\t\"\\","é":1,"a":{"b":[],"a":{}},"\ud83d\ude00":"😀"}`,
			"{\"a\":{\"a\":{},\"b\":[]},\"z\":\"\u2028<>&\u007f\\u0001\\n\\t\\\"\\\\\",\"é\":1,\"😀\":\"😀\"}"},
		{"scalar string", ` "x" `, `"x"`},
		{"duplicate key last wins", `{"a":1,"a":2}`, `{"a":2}`},
		{"whitespace", "{ \"b\" : [ 1 , 2 ] ,\n \"a\" : null }", `{"a":null,"b":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalJSONJS(t *testing.T) {
	in := `[1.10,1E5,-0,-0.0,0.0001,0.00001,1e15,123456789012345678901234567890,1.5e300,3.141592653589793238,5e-324,1e400,-1e400,2.5E-7,100.0,1e21,1e22,0.1e2,1e-7,0.000001,123e-20]`
	want := `[1.1,100000,0,0,0.0001,0.00001,1000000000000000,1.2345678901234568e+29,1.5e+300,3.141592653589793,5e-324,null,null,2.5e-7,100,1e+21,1e+22,10,1e-7,0.000001,1.23e-18]`
	got, err := CanonicalJSONStyle([]byte(in), JSNumbers)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestPythonDumpsVariants(t *testing.T) {
	in := `{"z":"\u2028<>&\u007f\u0001\n\t\"\\","é":1,"a":{"b":[],"a":{}},"\ud83d\ude00":"😀","f":[1.0,1e16]}`
	want := `{"z": "\u2028<>&\u007f\u0001\n\t\"\\", "\u00e9": 1, "a": {"b": [], "a": {}}, "\ud83d\ude00": "\ud83d\ude00", "f": [1.0, 1e+16]}`
	got, err := appendEncoded(nil, []byte(in), &pyDefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("py default:\ngot  %s\nwant %s", got, want)
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1}x`, `[1,]`, `NaN`, `{"a":Infinity}`, `{1:2}`, `"\x01"`} {
		if _, err := CanonicalJSON([]byte(in)); err == nil {
			t.Errorf("%q: expected error", in)
		}
	}
	deep := make([]byte, 0, 300)
	for i := 0; i < 100; i++ {
		deep = append(deep, '[')
	}
	for i := 0; i < 100; i++ {
		deep = append(deep, ']')
	}
	if _, err := CanonicalJSON(deep); err == nil {
		t.Error("expected depth error")
	}
}

func TestSecureDigest(t *testing.T) {
	tests := map[string]string{
		"/Cb8WVCC4ML5RsFM":          "5AMFSHtvWhBikizsWGW8wR",
		"/Cb8WVCC4ML5RsFM/client01": "2bDFT5akYCfhjCen05Vmym",
		"":                          "6VE2wRoL3MNCIb6wil2FiA",
		`{"alg":"CHACHA20P1305","cid":"auto-math@fame.fabric-XYZ","ephPub":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","opts":0,"type":"SecureOpen"}`: "6YxOiYPyZeE9yPEDWhXBZ6",
		`{"kid":"kid-9","physicalPath":"/Cb8WVCC4ML5RsFM/r1","type":"KeyRequest"}`:                                                                       "4HHvIPnfXkc8oUgoTgUmOS",
		`{"id":"req-1","jsonrpc":"2.0","method":"add","params":{"note":"héllo","x":3,"y":4}}`:                                                            "5nNqFZP2SMyuzMoJcWjZXT",
	}
	for in, want := range tests {
		if got := SecureDigest(in); got != want {
			t.Errorf("SecureDigest(%q) = %s, want %s", in, got, want)
		}
		if got := SecureDigestBytes([]byte(in)); got != want {
			t.Errorf("SecureDigestBytes(%q) = %s, want %s", in, got, want)
		}
	}
	if got := base62u128(0, 0); got != "0" {
		t.Errorf("zero: %s", got)
	}
	if got := base62u128(0, 62); got != "10" {
		t.Errorf("62: %s", got)
	}
}
