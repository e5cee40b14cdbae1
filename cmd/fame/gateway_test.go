package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSelfDialPinsServedCertificate: the gateway's caller nodes accept exactly the certificate
// the sentinel serves: a TLS peer on the dialled address with another certificate (something
// else listening there, or a stale rotation) is refused in the handshake; the served one is
// accepted whatever names it carries (httptest's names example.com, not the dialled address).
func TestSelfDialPinsServedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	served := srv.TLS.Certificates[0]
	otherCert := selfSigned(t)

	d := &selfDial{certs: &certStore{}}
	d.addr.Store(srv.Listener.Addr().String())
	if got := d.url(); got != "wss://"+srv.Listener.Addr().String()+"/fame/v1/attach/ws/downstream" {
		t.Fatalf("url %q", got)
	}
	get := func() error {
		resp, err := d.httpClient().Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	d.certs.cur.Store(&otherCert)
	if err := get(); !errors.Is(err, errNotOwnCertificate) {
		t.Fatalf("a peer with another certificate: %v, want errNotOwnCertificate", err)
	}
	d.certs.cur.Store(&tls.Certificate{})
	if err := get(); !errors.Is(err, errNotOwnCertificate) {
		t.Fatalf("an empty served certificate: %v, want errNotOwnCertificate", err)
	}
	d.certs.cur.Store(&served)
	if err := get(); err != nil {
		t.Fatalf("the served certificate: %v", err)
	}
	if (&selfDial{}).httpClient() != nil {
		t.Fatal("plain ws gets a TLS client")
	}
}

func TestSelfAddr(t *testing.T) {
	for _, tc := range []struct{ listen, wantHost string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"0.0.0.0:0", "127.0.0.1"},
		{":0", "127.0.0.1"},
	} {
		l, err := net.Listen("tcp", tc.listen)
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(selfAddr(l))
		_, wantPort, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		if host != tc.wantHost || port != wantPort {
			t.Fatalf("selfAddr(%s) = %s:%s, want %s:%s", tc.listen, host, port, tc.wantHost, wantPort)
		}
	}
}

// selfSigned is a certificate for 127.0.0.1 other than httptest's.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
