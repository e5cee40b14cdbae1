// Package token verifies the JWTs of the admission flow: OAuth2 access tokens
// from the dev server (checked by the welcome service and a gated sentinel),
// attach tickets and CA grants from the welcome service (checked by the
// sentinel and the CA).
//
// A Verifier checks, in this order: the compact form and header (EdDSA only,
// kid required), the signature against a KeySource (a JWKS URL fetched and
// cached, or static keys), exp/nbf with a small leeway, issuer, audience,
// required scopes, and optionally that the jti has not been seen before.
// Every refusal is an *Error carrying a Reason (expired, wrong_audience, ...)
// so that callers can answer with a precise code and tests can branch on it
// with errors.Is(err, token.ErrExpired).
//
// Verifier.Authenticate is the one bearer check of the admission HTTP
// endpoints (the CA's sign, the welcome hello): Authorization header,
// verification, WWW-Authenticate on refusal, and a Refusal (code, detail)
// that each service answers in its own shape.
//
// Timestamps are accepted as integers or floats (the reference writes exp as
// a float); tokens issued here use integer seconds.
package token
