// Package envelope holds the FAME wire types: the envelope, every frame type, addresses with
// wildcard logicals, identifiers and the JSON codec. It does no I/O and starts no goroutines.
//
// Two decoders serve two different readers. A router only needs the routing header (to, sid,
// flowId, corrId, replyTo, rtype, frame type, sec.enc.kid, aft), and must forward the bytes it
// received with only the hop-by-hop fields (seqId, flowFlags) changed, because a signature
// covers most of the rest. ParseHeader reads exactly that without building the envelope, and
// Restamp rewrites the two hop-by-hop numbers in a copy of the original bytes. Nodes and tests
// use Decode, which builds an Envelope but keeps the frame, sec and meta objects as the raw
// bytes they arrived as, and keeps unknown top-level keys, so re-encoding never loses what a
// peer signed or what a newer peer added.
//
// The two must never read different values from the same bytes: a router that forwards by one
// reading while a verifier checks the signature over another can be steered. So they share the
// key dispatch and the frame, sec and meta checks (keys.go), and both refuse an envelope with
// a key given twice — compared unescaped, aliases such as replyTo/reply_to counting as one key —
// in the envelope, frame, sec, sec.sig, sec.enc, meta or meta.set, or a case variant of a key
// that encoding/json-based readers would match ("Cid", "SIG"). FuzzDifferential checks the
// agreement against encoding/json from the captured reference traffic.
//
// Every decoder refuses input over MaxMessageSize, invalid UTF-8, JSON nested deeper than
// MaxDepth and malformed JSON with a typed error (see errors.go); none of them panics. The JSON
// validation under both decoders is the module's one scanner, internal/jsonscan (shared with
// package security); scan.go walks members on it and maps its errors to ErrSyntax/ErrTooDeep.
package envelope
