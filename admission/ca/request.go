package ca

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// MaxSignRequest bounds the body of a sign request.
const MaxSignRequest = 64 << 10

// SignRequest is the body of POST /fame/v1/ca/sign (snake_case, §4.1).
type SignRequest struct {
	CSRPEM       string   `json:"csr_pem"`
	RequesterID  string   `json:"requester_id"`
	PhysicalPath string   `json:"physical_path,omitempty"`
	Logicals     []string `json:"logicals,omitempty"`
}

// SignResponse is the 200 body.
type SignResponse struct {
	CertificatePEM      string `json:"certificate_pem"`
	CertificateChainPEM string `json:"certificate_chain_pem"`
	ExpiresAt           string `json:"expires_at"`
}

// ErrBadRequest is returned by DecodeSignRequest for unusable bodies.
var ErrBadRequest = errors.New("ca: invalid sign request")

// DecodeSignRequest parses a sign request body and its CSR.
func DecodeSignRequest(b []byte) (*SignRequest, *x509.CertificateRequest, error) {
	if len(b) > MaxSignRequest {
		return nil, nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadRequest, MaxSignRequest)
	}
	var req SignRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.RequesterID == "" {
		return nil, nil, fmt.Errorf("%w: requester_id is required", ErrBadRequest)
	}
	block, _ := pem.Decode([]byte(req.CSRPEM))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, nil, fmt.Errorf("%w: csr_pem holds no CERTIFICATE REQUEST block", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	return &req, csr, nil
}
