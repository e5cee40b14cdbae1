package admit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fame-go/fame/security"
)

// CATimeout bounds one sign request (the reference CA client's 30 s).
const CATimeout = 30 * time.Second

// signRequest is the body of POST <ca>/sign (security.md §4.1), the shape
// admission/ca.DecodeSignRequest reads.
type signRequest struct {
	CSRPEM       string   `json:"csr_pem"`
	RequesterID  string   `json:"requester_id"`
	PhysicalPath string   `json:"physical_path,omitempty"`
	Logicals     []string `json:"logicals,omitempty"`
}

type signResponse struct {
	CertificatePEM      string `json:"certificate_pem"`
	CertificateChainPEM string `json:"certificate_chain_pem"`
	ExpiresAt           string `json:"expires_at"`
}

// RequestCertificate sends a CSR to the CA of a ca_sign grant (caURL is the
// grant URL; "/sign" is appended) with the grant token as bearer, and
// returns the PEM chain, leaf first. The chain is only parsed here; callers
// verify it against their trust bundle.
func RequestCertificate(ctx context.Context, caURL, caToken string, csrPEM []byte, requesterID, physicalPath string, logicals []string) ([]byte, error) {
	return requestCertificate(ctx, nil, 0, caURL, "Authorization", caToken, csrPEM, requesterID, physicalPath, logicals)
}

func requestCertificate(ctx context.Context, client *http.Client, timeout time.Duration, caURL, header, caToken string,
	csrPEM []byte, requesterID, physicalPath string, logicals []string) ([]byte, error) {
	if !strings.HasPrefix(caURL, "http://") && !strings.HasPrefix(caURL, "https://") {
		return nil, fmt.Errorf("%w: CA URL %q is not http(s)", ErrConfig, caURL)
	}
	if requesterID == "" || len(csrPEM) == 0 {
		return nil, fmt.Errorf("%w: sign request needs a CSR and a requester id", ErrConfig)
	}
	body, err := json.Marshal(signRequest{CSRPEM: string(csrPEM), RequesterID: requesterID,
		PhysicalPath: physicalPath, Logicals: logicals})
	if err != nil {
		return nil, fmt.Errorf("admit: encode sign request: %w", err)
	}
	hdr := http.Header{}
	if caToken != "" {
		if header == "" || strings.EqualFold(header, "Authorization") {
			hdr.Set("Authorization", "Bearer "+caToken)
		} else {
			hdr.Set(header, caToken)
		}
	}
	if timeout <= 0 {
		timeout = CATimeout
	}
	out, err := post(ctx, client, timeout, request{
		op: "sign", url: strings.TrimRight(caURL, "/") + "/sign", contentType: "application/json", body: body, header: hdr,
	})
	if err != nil {
		return nil, err
	}
	var sr signResponse
	if err := json.Unmarshal(out, &sr); err != nil {
		return nil, fmt.Errorf("%w: sign response is not JSON: %v", ErrBadResponse, err)
	}
	chain := sr.CertificateChainPEM
	if chain == "" {
		chain = sr.CertificatePEM
	}
	if _, err := security.ParseCertificates([]byte(chain)); err != nil {
		return nil, fmt.Errorf("%w: sign response: %v", ErrBadResponse, err)
	}
	return []byte(chain), nil
}
