package welcome

import "encoding/json"

// Grant shapes as the reference emits them (A.6): the grant itself is
// camelCase-free (type/purpose/url/auth) and the nested auth objects use
// snake_case keys, which every reference consumer accepts.

type staticTokenProvider struct {
	Type      string  `json:"type"`
	Token     string  `json:"token"`
	ExpiresAt *string `json:"expires_at"`
}

type wsSubprotocolAuth struct {
	Type              string              `json:"type"`
	TokenProvider     staticTokenProvider `json:"token_provider"`
	SubprotocolPrefix string              `json:"subprotocol_prefix"`
}

type bearerHeaderAuth struct {
	Type          string              `json:"type"`
	TokenProvider staticTokenProvider `json:"token_provider"`
	HeaderName    string              `json:"header_name"`
}

type grant struct {
	Type    string `json:"type"`
	Purpose string `json:"purpose"`
	URL     string `json:"url"`
	Auth    any    `json:"auth"`
}

// Grant purposes.
const (
	PurposeAttach = "node.attach"
	PurposeCASign = "ca_sign"
)

func attachGrant(url, ticket string) (json.RawMessage, error) {
	return json.Marshal(grant{
		Type: "WebSocketConnectionGrant", Purpose: PurposeAttach, URL: url,
		Auth: wsSubprotocolAuth{
			Type:              "WebSocketSubprotocolAuth",
			TokenProvider:     staticTokenProvider{Type: "StaticTokenProvider", Token: ticket},
			SubprotocolPrefix: "bearer",
		},
	})
}

func caGrant(url, tok string) (json.RawMessage, error) {
	return json.Marshal(grant{
		Type: "HttpConnectionGrant", Purpose: PurposeCASign, URL: url,
		Auth: bearerHeaderAuth{
			Type:          "BearerTokenHeaderAuth",
			TokenProvider: staticTokenProvider{Type: "StaticTokenProvider", Token: tok},
			HeaderName:    "Authorization",
		},
	})
}
