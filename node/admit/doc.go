// Package admit is the node side of admission (security.md §3, §4): it gets
// a node the credentials its admission profile calls for and keeps them
// fresh for as long as the process runs.
//
//   - ClientCredentials.TokenSource: an OAuth2 client-credentials access
//     token from the dev OAuth2 server (admission/oauth2), cached.
//   - Welcome.Hello / WelcomeTokenSource: POST a NodeHello to the welcome
//     service (admission/welcome) with that token as bearer and turn the
//     NodeWelcome into a Grant: attach URL and ticket, placement, and the
//     ca_sign grant. Both key spellings the reference emits inside grants
//     (token_provider/tokenProvider, subprotocol_prefix/header_name/param)
//     are accepted.
//   - RequestCertificate / CertSource: CSR (security.CreateCSR) to the CA
//     named by the ca_sign grant (admission/ca), chain checked to certify our
//     key and, with FAME_CA_CERTS, verified with security.VerifyNodeCert.
//     CertSource.CertificateFor re-issues at once for a new placement (the
//     grant's assigned path changed), for the same key.
//   - New: picks all of the above from the Settings' profile.
//
// # Renewal
//
// Every credential is a lease renewed once 2/3 of its life (measured from
// when we obtained it, on the local clock) has passed; the reference renews
// access tokens 30 s early at best and never renews certificates, so its
// nodes break after a day. Renewal is lazy and single-flight: the first
// caller past the renewal point starts one fetch on its own goroutine,
// bounded by a timeout, that all callers share; a caller giving up does not
// cancel it. If the fetch fails while the old value is still valid, the old
// value is served and the fetch retried after a second, so an outage of the
// services shorter than the last third of a lifetime goes unnoticed. A
// credential refused by a service (401) is dropped and fetched once more
// (the dev OAuth2 and welcome services use ephemeral keys).
//
// # Settings
//
// The library reads no environment variable. Settings carries the values;
// config.AdmitSettings (and config.Node, for a whole node) fills it from the
// reference's variables:
//
//	FAME_ADMISSION_PROFILE        none | noop | open | direct (default) | welcome
//	FAME_DIRECT_ADMISSION_URL     open, direct: ws(s)://…/fame/v1/attach/ws/downstream
//	FAME_ADMISSION_SERVICE_URL    welcome: https://welcome/fame/v1/welcome/hello
//	FAME_ADMISSION_TOKEN_URL      direct, welcome: https://oauth2-server/oauth/token
//	FAME_ADMISSION_CLIENT_ID, FAME_ADMISSION_CLIENT_SECRET
//	FAME_JWT_AUDIENCE             token request audience (unset: the server's default)
//	FAME_CA_CERTS                 PEM file or inline PEM: extra HTTPS roots for the
//	                              services, and the trust bundle for node certificates
//	FAME_NODE_ID                  system id when the caller gives none
//	FAME_REQUESTED_LOGICALS       logicals for NodeHello when the caller gives none
//
// The scope requested is node.connect, as the reference's.
//
// # How node.Connect uses it
//
// The node core owns the WebSocket; this package only supplies what goes
// into the dial:
//
//	adm, err := admit.New(settings, admit.Options{
//		SystemID: cfg.SystemID, Logicals: cfg.RequestedLogicals})
//	cfg.SystemID = adm.SystemID // the ticket is bound to it
//	cfg.Token = adm.Token       // nil for none/open
//	// on every dial:
//	url, err := adm.AttachURL(ctx) // static, or the welcome grant's
//	tok, err := cfg.Token(ctx)     // fresh ticket / access token
//	// dial url+"/"+SystemID with subprotocols "bearer", tok;
//	// NodeAttach.instanceId = adm.InstanceID;
//	// with welcome, NodeAttach.acceptedLogicals = grant.AcceptedLogicals.
//	// on an authentication refusal, before reconnecting:
//	adm.Welcome.Invalidate() // or adm.OAuth2.Invalidate() for direct
//
// With signing (overlay/strict-overlay) the node also runs
// adm.CertSource(key).Run(ctx, onRenew) and puts the chain into its signing
// JWK's x5c.
package admit
