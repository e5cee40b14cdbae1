// Package welcome is the admission service a node calls before attaching:
// POST /fame/v1/welcome/hello with a NodeHello envelope and an OAuth2 bearer
// token; the answer is a NodeWelcome envelope that places the node under the
// configured sentinel and carries its connection grants (security.md §3.3,
// A.6):
//
//   - node.attach: WebSocketConnectionGrant to the sentinel's public attach
//     URL with a StaticTokenProvider holding a short-lived attach ticket
//     (admission/ticket), sent by the node as Sec-WebSocket-Protocol
//     "bearer,<ticket>";
//   - ca_sign (when a CA URL is configured): HttpConnectionGrant to the CA
//     with a CA grant token limited to the node's system id, assigned path
//     and accepted logicals.
//
// Placement is static, as in the reference: every node goes under one
// sentinel (target system id + physical path); a hello from the sentinel
// itself (systemId == target) gets only the CA grant and the root path.
//
// Unlike the reference, admission binds identity: per-client grants
// (ClientGrant, FAME_WELCOME_GRANTS) say which system ids (exact, "prefix*",
// or "*" for ids no other client names) and which logicals each OAuth2
// client — the bearer token's subject — may be admitted as. A hello outside
// its client's grant is refused with 403 and code no_grant,
// system_id_not_granted or logical_not_granted, a warning naming the client
// and a fame_welcome_refused_total{reason} count (GET /metrics); the ticket
// and CA grant carry only the granted id and the requested (granted)
// logicals, plus client_id. A grant of the logical "*" is refused when the
// configuration is loaded. Grants are required when hellos are
// authenticated; anonymous hellos (development) keep the reference's
// behaviour with an allow list (rejectedLogicals). Malformed logicals and
// system ids are refused with 422, and the signing key can be persisted so
// tickets survive a restart.
//
// Environment (ConfigFromEnv): FAME_WELCOME_TARGET_SYSTEM_ID,
// FAME_WELCOME_TARGET_PHYSICAL_PATH (default /<target id>),
// FAME_WELCOME_ATTACH_URL, FAME_WELCOME_TARGETS (the sentinels of a cluster,
// "id=ws://host/fame/v1/attach/ws/downstream,...": each hello is placed on a
// ready one, ranked by rendezvous hashing of the system id, readiness from
// their /readyz cached 1 s; none ready: 503 no_sentinel; placement.go; `fame
// welcome` probes wss:// sentinels trusting FAME_CA_CERTS), FAME_CA_SERVICE_URL, FAME_WELCOME_ISSUER,
// FAME_WELCOME_GRANTS, FAME_WELCOME_GRANTS_FILE (ParseGrants),
// FAME_WELCOME_ALLOWED_LOGICALS (anonymous only), FAME_WELCOME_TICKET_TTL,
// FAME_WELCOME_TTL, FAME_WELCOME_KEY_FILE, FAME_WELCOME_ALLOW_ANONYMOUS,
// and for the bearer check the reference's FAME_JWT_TRUSTED_ISSUER,
// FAME_JWKS_URL, FAME_JWT_AUDIENCE; FAME_APP_HOST / FAME_APP_PORT (8090).
package welcome
