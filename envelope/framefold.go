package envelope

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
)

// Case variants of frame fields. ParseFrame decodes every frame but Data with encoding/json,
// which matches a key to a struct field regardless of letter case (Unicode simple folding:
// "PhysicalPath", "physicalpath" and "\u212aeys" all fill a field); the reference's JSON.parse
// and json.loads do not. A frame {"physicalPath":"/victim","PhysicalPath":"/mallory"} would read
// /mallory here and /victim in a TS peer, so the one-parse rule (keys.go) refuses, in the
// frame object, any key that folds to a field name of some frame type without being spelt as
// that field. Checked in parseFrameHeader, so ParseHeader, Decode and ParseFrame all refuse it,
// for every frame type; Data's own keys are in frameScope and never reach this check.

// frameFields maps the ASCII-lowercased JSON name of every top-level field of every frame type
// to its spelling.
var frameFields = func() map[string]string {
	m := map[string]string{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" {
				continue
			}
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				add(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			l := strings.ToLower(tag)
			if prev, ok := m[l]; ok && prev != tag {
				panic("envelope: frame fields " + prev + " and " + tag + " differ only in case")
			}
			m[l] = tag
		}
	}
	for _, ty := range []string{TypeData, TypeDeliveryAck, TypeNodeAttach, TypeNodeAttachAck, TypeNodeHello,
		TypeNodeWelcome, TypeNodeReject, TypeAddressBind, TypeAddressBindAck, TypeAddressUnbind,
		TypeAddressUnbindAck, TypeCapabilityAdvertise, TypeCapabilityAdvertiseAck, TypeCapabilityWithdraw,
		TypeCapabilityWithdrawAck, TypeCreditUpdate, TypeNodeHeartbeat, TypeNodeHeartbeatAck,
		TypeKeyRequest, TypeKeyAnnounce, TypeSecureOpen, TypeSecureAccept, TypeSecureClose} {
		add(reflect.TypeOf(newFrame(ty)).Elem())
	}
	m["type"] = "type"
	return m
}()

// checkFrameFold refuses a frame key k (unescaped, not one of frameScope's exact names) that
// encoding/json would read as a frame field it is not spelt as. No allocation: ASCII keys are
// lowercased on the stack; keys with other bytes (rare) are compared with bytes.EqualFold,
// which is the folding encoding/json applies.
func checkFrameFold(k []byte) error {
	ascii := true
	for _, c := range k {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		// A multi-byte rune can fold to an ASCII letter (U+212A KELVIN SIGN is k), so no
		// length shortcut here.
		for _, name := range frameFields {
			if bytes.EqualFold(k, []byte(name)) {
				return fmt.Errorf("%w: frame key %q (expected %q)", ErrAmbiguousKey, k, name)
			}
		}
		return nil
	}
	var buf [frameFieldMax]byte
	if len(k) > len(buf) {
		return nil // longer than every field name
	}
	for i, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if name, ok := frameFields[string(buf[:len(k)])]; ok && name != string(k) {
		return fmt.Errorf("%w: frame key %q (expected %q)", ErrAmbiguousKey, k, name)
	}
	return nil
}

// frameFieldMax bounds the length of a frame field name (checked at init).
const frameFieldMax = 48

func init() {
	for _, name := range frameFields {
		if len(name) > frameFieldMax {
			panic("envelope: frame field name longer than frameFieldMax: " + name)
		}
	}
}
