// Package ca is the development certificate authority of the admission flow
// (security.md §4, A.8). After the welcome service has placed a node, the
// node POSTs a CSR to /fame/v1/ca/sign with the CA grant from its welcome as
// bearer token; the CA answers with an X.509 SVID:
//
//   - empty subject, the CSR's public key (Ed25519 or ECDSA), 1-day validity;
//   - SAN URI spiffe://naylence.fame/nodes/<sid>, sid = secure digest of the
//     assigned physical path;
//   - KeyUsage digitalSignature (critical), EKU clientAuth+serverAuth
//     (critical);
//   - 1.3.6.1.4.1.58530.1 = sid, .4 = node id, .2 = logicals as a JSON array
//     (raw UTF-8 extension values, as the reference writes them).
//
// Unlike the reference, the CA checks the CSR signature and issues only
// what the grant (the welcome service's ticket, audience "ca") grants:
// requester_id must be the grant's system_id (code requester_not_granted),
// the physical path its assigned_path (path_not_granted), every logical one
// of its accepted_logicals (logical_not_granted); the CSR may not ask for
// more either (csr_not_granted): subject only CN = the system id, SAN URIs
// only naylence://<granted logical> or the SPIFFE ID to be issued, no DNS,
// e-mail or IP names, no CA or signing key usages, no other extensions.
// Every refusal is a 403 JSON error with that code, a warning naming the
// requester and the grant's client_id, and fame_ca_refused_total{reason}
// (GET /metrics; fame_ca_issued_total counts certificates).
//
// InitCA creates (or reloads) a development root and intermediate with
// Ed25519 keys on disk (0600), in the reference's file layout; leaves are
// signed by the intermediate. IssueServerCert gives the dev services a TLS
// certificate from the same CA. Certificates, the node OIDs, the trust domain
// and the check a peer applies to an x5c chain (security.VerifyNodeCert /
// VerifyNodeChain: chain to our roots, SPIFFE ID in our trust domain, sid
// extension consistent with the SAN) live in package security; the CA uses
// them and keeps only the issuing side.
//
// Environment (ConfigFromEnv): FAME_CA_DIR (InitCA directory), or the
// reference's FAME_CA_CERT_FILE/_PEM, FAME_CA_KEY_FILE/_PEM,
// FAME_INTERMEDIATE_CHAIN_FILE/_PEM, FAME_SIGNING_CERT_FILE/_PEM,
// FAME_SIGNING_KEY_FILE/_PEM; the CA grant is verified with
// FAME_CA_TRUSTED_ISSUER (default https://welcome/fame/welcome) and
// FAME_CA_JWKS_URL (default <issuer>/.well-known/jwks.json);
// FAME_CA_CERT_TTL (default 1 day); FAME_CA_ALLOW_UNAUTHENTICATED;
// FAME_APP_HOST / FAME_APP_PORT (8091).
package ca
