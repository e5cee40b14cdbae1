// Package gateway is the HTTP gateway to a FAME fabric, with the reference's surface under
// BasePath (default /fame/v1/gateway):
//
//	POST /rpc       {"targetAddr" | "capabilities", "method", "params", "timeoutMs"}
//	                -> 200 {"ok":true,"result":...} or {"ok":false,"error":"...","code":"..."}
//	POST /messages  {"targetAddr" | "capabilities", "type", "payload"} -> 202 {"status":"message_accepted"}
//	GET  /health    -> 200 {"status":"healthy","listenerType":"AgentHttpGatewayListener"}
//
// Identity. The gateway never speaks for itself: each HTTP caller's requests go out through
// a node attached to the sentinel with the caller's own bearer token (Connect), so the
// sentinel's admission applies exactly the checks a node's token gets (signature, issuer,
// audience, expiry) and the envelopes carry that caller's sid, not the sentinel's. Those
// nodes are cached per token (a SHA-256 of it; at most MaxCallers, least recently used
// closed first, each kept at most CallerTTL so an expired token stops being served). Without
// RequireToken, requests without Authorization share one anonymous node.
//
// In fame sentinel. The gateway is a `listeners:` entry of type AgentHttpGatewayListener (the
// reference's name; keys enabled, allowed_origins, limits.body_limit_bytes or the reference's
// limits.bodyLimitBytes) or FAME_GATEWAY=on (FAME_GATEWAY_ALLOWED_ORIGINS,
// FAME_GATEWAY_BODY_LIMIT win over the keys); restart-only. It is served on the sentinel's own
// listener, over HTTPS with -tls-cert, and the caller nodes attach to that same listener (wss,
// pinning the certificate it serves): no second port. Under strict-overlay (with welcome
// admission only) each caller's node is admitted like any node: the caller's bearer is its
// hello credential at the welcome service (FAME_GATEWAY_WELCOME_URL, else
// FAME_ADMISSION_SERVICE_URL), and the node signs with a key of its own certified by the
// stack's CA, so the replicas see the caller's own certificate, never the sentinel's. The
// reference's gateway instead checks the bearer with its authorizer and sends as the sentinel
// node itself (TS agent-http-gateway-listener.ts: node.invoke / invokeByCapability), so the
// envelopes carry the sentinel's identity; ours never does.
//
// Refusals, each with a JSON body {"ok":false,"error","code"}, a log line naming the remote
// address and fame_gateway_refusals_total{reason}: 400 invalid_request (bad JSON, no target,
// field limits as the reference's), 401 unauthorized (no token where one is required, or the
// sentinel or the welcome service refused the token), 403 forbidden (a CORS origin not allowed,
// the sentinel refused the route, or the welcome service refused the request), 503 unavailable
// (draining, or the welcome service or CA unreachable), 404 not_found (no route), 413 payload_too_large (BodyLimit, 1 MiB),
// 429 queue_full (the fabric or agent is overloaded), 504 timeout. CORS is off unless
// AllowedOrigins names origins; a request from any other origin is refused, not just left
// without CORS headers.
package gateway
