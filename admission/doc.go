// Package admission groups the services and checks that let a node join a
// FAME fabric under a sentinel (security.md §3-4). The root package holds
// only this overview and the end-to-end test; the work is in sub-packages:
//
//	oauth2   dev OAuth2 server: client credentials → EdDSA access token, JWKS
//	token    JWT verification (JWKS or static keys, typed refusal reasons)
//	welcome  welcome service: NodeHello → NodeWelcome with grants
//	ticket   attach tickets and CA grants: issuing, and the sentinel's check
//	ca       dev CA: CSR → SPIFFE X.509 SVID, trust bundle, server certs
//	jose     Ed25519 signing keys and JWK encoding shared by the above
//
// The flow, as the reference's nodes drive it (FAME_ADMISSION_PROFILE=welcome):
//
//  1. Client credentials. The node POSTs grant_type=client_credentials,
//     client_id/secret, scope=node.connect and audience=FAME_JWT_AUDIENCE to
//     FAME_ADMISSION_TOKEN_URL (oauth2: /oauth/token) and gets an access
//     token signed with the OAuth2 server's key (published at
//     /.well-known/jwks.json).
//  2. Welcome hello. It POSTs a NodeHello envelope to
//     FAME_ADMISSION_SERVICE_URL (welcome: /fame/v1/welcome/hello) with
//     "Authorization: Bearer <access token>". The welcome service checks the
//     token (token.Verifier: issuer, audience, scope node.connect), places the
//     node under the configured sentinel (assigned path
//     /<sentinel>/<systemId>), keeps the requested logicals it allows, and
//     answers NodeWelcome with two grants:
//     - node.attach: the sentinel's WebSocket URL plus an attach ticket
//     (aud = sentinel physical path, system_id, assigned_path,
//     accepted_logicals, instance_id; a few minutes of validity);
//     - ca_sign: the CA URL plus a CA grant (aud "ca", same placement).
//  3. CSR. With x509 signing material the node POSTs its CSR to
//     <ca_sign url>/sign with the CA grant as bearer token. The CA verifies
//     the grant against the welcome JWKS, refuses any requester id, path or
//     logical the grant does not name, and returns the SVID
//     (spiffe://naylence.fame/nodes/<sid>, Naylence OIDs) and its chain.
//  4. Attach. The node opens
//     <attach url>/<systemId> with "Sec-WebSocket-Protocol: bearer,<ticket>"
//     and sends NodeAttach. The sentinel calls ticket.TicketVerifier.Verify
//     with the NodeAttach systemId/instanceId and its own physical path
//     (signature via the welcome JWKS at FAME_JWKS_URL, issuer
//     FAME_JWT_TRUSTED_ISSUER, exp, aud, system id binding), and later checks
//     each AddressBind with Ticket.AllowsLogical. Keys in NodeAttach that
//     carry x5c are checked with security.VerifyNodeCert against FAME_CA_CERTS.
//
// Each service is an http.Handler built from a Config; ConfigFromEnv in each
// package reads the reference's environment variable names.
package admission
