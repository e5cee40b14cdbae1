package cluster

import (
	"errors"
	"testing"
)

func TestRateBatchRoundTrip(t *testing.T) {
	uses := []RateUse{{Kind: "identity", Key: "alice", Tokens: 3}, {Kind: "address", Key: "math@fame.fabric", Tokens: 1}}
	data, err := EncodeRateBatch("s1", uses)
	if err != nil {
		t.Fatal(err)
	}
	from, got, err := DecodeRateBatch(data)
	if err != nil || from != "s1" || len(got) != 2 || got[0] != uses[0] || got[1] != uses[1] {
		t.Fatalf("decode = %q %v %v", from, got, err)
	}
	for _, bad := range []string{``, `{`, `{"s":"","u":[]}`, `{"s":"s1","u":[{"k":"x","n":"a","t":1}]}`,
		`{"s":"s1","u":[{"k":"identity","n":"a","t":-5}]}`, `{"s":"s1","u":[{"k":"identity","n":"","t":1}]}`} {
		if _, _, err := DecodeRateBatch([]byte(bad)); !errors.Is(err, ErrBadRateBatch) {
			t.Errorf("DecodeRateBatch(%q) err = %v, want ErrBadRateBatch", bad, err)
		}
	}
	if _, err := EncodeRateBatch("s1", make([]RateUse, MaxRateBatch+1)); !errors.Is(err, ErrBadRateBatch) {
		t.Fatalf("oversized batch encoded: %v", err)
	}
}

func FuzzDecodeRateBatch(f *testing.F) {
	f.Add([]byte(`{"s":"s1","u":[{"k":"identity","n":"alice","t":3}]}`))
	f.Add([]byte(`{"s":"s1","u":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		from, uses, err := DecodeRateBatch(data)
		if err != nil {
			return
		}
		if !validID(from) || len(uses) > MaxRateBatch {
			t.Fatalf("accepted %q: %q %d uses", data, from, len(uses))
		}
		for _, u := range uses {
			if u.Tokens <= 0 || u.Key == "" {
				t.Fatalf("accepted use %+v", u)
			}
		}
	})
}
