// Package ticket issues and verifies the two tokens the welcome service hands
// a node: the attach ticket (audience = the sentinel's physical path,
// presented as "Sec-WebSocket-Protocol: bearer,<ticket>" on attach) and the
// CA grant (audience "ca", presented to the CA service as a bearer token).
// Both carry the placement: system_id, parent_path, assigned_path,
// accepted_logicals and instance_id (security.md A.7), plus client_id: the
// OAuth2 client (token subject) whose grant the welcome service applied.
// accepted_logicals are exactly the logicals the node asked for, each
// within its client's grant, so a holder can bind no more than was granted.
//
// TicketVerifier is what the sentinel calls on attach. Beyond the reference
// (signature, exp, issuer, aud = sentinel path) it also binds the ticket to
// the NodeAttach frame: the ticket's system_id must equal the attaching
// systemId (and the URL's), and, unless disabled, its instance_id the frame's
// instanceId. The returned Ticket then answers AllowsLogical for every later
// AddressBind on that connection.
package ticket
