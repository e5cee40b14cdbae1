// Package oauth2 is the development OAuth2 server of the admission flow
// (security.md §3.5): POST /oauth/token issues EdDSA-signed access tokens for
// the client-credentials grant, GET /.well-known/jwks.json publishes the
// verification key and GET /.well-known/openid-configuration describes both.
//
// Clients authenticate with HTTP Basic or client_id/client_secret form
// fields (secrets compared in constant time). Granted scopes are the
// requested ones that are allowed (all allowed scopes when none is
// requested); a request naming only unknown scopes is refused with
// invalid_scope rather than silently widened as the reference does.
//
// Environment (ConfigFromEnv): FAME_JWT_ISSUER, FAME_JWT_AUDIENCE (default
// fame-fabric), FAME_JWT_CLIENT_ID/SECRET or FAME_OAUTH2_CLIENT_ID/SECRET,
// FAME_OAUTH2_CLIENTS ("id:secret,id2:secret2"), FAME_JWT_ALLOWED_SCOPES
// (default node.connect), FAME_OAUTH2_TOKEN_TTL (default 3600 s),
// FAME_OAUTH2_KEY_FILE (empty = ephemeral key), APP_HOST / APP_PORT (8099).
package oauth2
