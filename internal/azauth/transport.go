package azauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// LoadCertPool returns the system roots plus every certificate in the PEM file at caFile. A file
// that holds no certificate is an error: a typo in a CA path would otherwise surface later as
// "certificate signed by unknown authority" from whichever SDK called first.
func LoadCertPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	return appendPEMFile(pool, caFile)
}

func appendPEMFile(pool *x509.CertPool, caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", caFile)
	}
	return pool, nil
}

// NewHTTPClient returns the *http.Client shared by azidentity, azsecrets (both accept it as an
// azcore policy.Transporter) and kiota. Its roots are, in order of precedence:
//   - roots plus the certificates in caFile, when both are given;
//   - roots alone, or the system roots plus caFile, when only one is given;
//   - the system roots, when neither is.
//
// The transport is a clone of http.DefaultTransport, so proxy settings from the environment and
// the dial and handshake timeouts stay as Go ships them, with two changes. It speaks HTTP/1.1:
// the handler has at most a few requests in flight (one per session it holds), so HTTP/2's
// multiplexing buys nothing, while its per-frame hand-offs between goroutines cost about a
// quarter of the handler's CPU per registration (measured by BenchmarkHandler in e2e). And it
// keeps enough idle connections per host for every session and verifying sign-in to reuse one,
// instead of Go's default of two, which would make a TLS handshake of every third request.
func NewHTTPClient(caFile string, roots *x509.CertPool) (*http.Client, error) {
	var pool *x509.CertPool
	switch {
	case roots != nil && caFile != "":
		p, err := appendPEMFile(roots.Clone(), caFile)
		if err != nil {
			return nil, err
		}
		pool = p
	case roots != nil:
		pool = roots
	case caFile != "":
		p, err := LoadCertPool(caFile)
		if err != nil {
			return nil, err
		}
		pool = p
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	t.ForceAttemptHTTP2 = false
	t.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: t}, nil
}
