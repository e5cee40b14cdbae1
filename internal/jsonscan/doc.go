// Package jsonscan is the module's one hand-written JSON scanner: the
// validating primitives under the envelope header parser and decoder
// (package envelope) and the canonicaliser, frame digests and key readers
// (package security). It never builds values: it finds where tokens start
// and end so callers can slice the original bytes instead of copying them.
//
// Everything it accepts is valid JSON (RFC 8259) and it accepts exactly
// what encoding/json accepts, except that nesting is bounded by the caller's
// limit (SkipValue's max) and UTF-8 validity is left to the callers (the
// envelope parser checks a whole message once; security decodes strings
// itself, turning invalid UTF-8 into U+FFFD as encoding/json does).
//
// Strings are scanned with a 256-entry table (one load per byte of a plain
// run), the faster of the two scanners this package replaced.
//
// Errors are *Error values carrying the byte offset and what was expected;
// callers wrap them into their own error kinds (envelope.ErrSyntax,
// envelope.ErrTooDeep) so their messages and errors.Is targets stay theirs.
package jsonscan
