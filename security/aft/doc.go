// Package aft mints and verifies Affinity Tag tokens (AFT): compact JWS a
// replica attaches to the SecureAccept / KeyAnnounce it sends back to a
// client (meta.set.aft), stating "client_sid is served by replica sid until
// exp". The sentinel verifies them and pins the client session to the
// replica the envelope came from (security.md §8).
//
// Sign / Unsigned mint tokens byte-for-byte as the reference replicas do;
// Verify checks them at a Level (strict, signed-optional, sid-only) and
// refuses with an *Error carrying a Reason (the label of the refusal
// counters; errors.Is matches one sentinel error per reason). A header or
// claim set that repeats a member (compared case-insensitively, as
// encoding/json matches names) is malformed, so that a token has one
// meaning.
//
// It is a leaf on purpose: it imports only the standard library and
// golang-jwt, so the node SDK, which mints AFTs, does not link the binding
// table's dependencies (bbolt, golang-lru, Prometheus) that live in package
// stickiness. TestLeafDependencies guards that.
package aft
