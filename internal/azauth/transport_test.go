package azauth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// writeCA saves srv's certificate as a PEM file, the way azemu writes ca.pem.
func writeCA(tb testing.TB, srv *httptest.Server) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, block, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestNewHTTPClientTrust(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	caFile := writeCA(t, srv)
	other := x509.NewCertPool()

	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		caFile  string
		roots   *x509.CertPool
		trusted bool
		wantErr string
	}{
		{name: "system roots only", trusted: false},
		{name: "CA file on system roots", caFile: caFile, trusted: true},
		{name: "CA file on given roots", caFile: caFile, roots: other, trusted: true},
		{name: "given roots without the CA", roots: other, trusted: false},
		{name: "given roots with the CA", roots: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, trusted: true},
		{name: "missing file", caFile: filepath.Join(t.TempDir(), "nope.pem"), wantErr: "CA file"},
		{name: "no certificate in file", caFile: empty, wantErr: "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewHTTPClient(tt.caFile, tt.roots)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v := c.Transport.(*http.Transport).TLSClientConfig.MinVersion; v < tls.VersionTLS12 {
				t.Errorf("MinVersion = %x", v)
			}
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != tt.trusted {
				t.Errorf("GET err = %v, want trusted=%v", err, tt.trusted)
			}
		})
	}
	// Appending to given roots must not modify the caller's pool.
	if _, err := NewHTTPClient(caFile, other); err != nil {
		t.Fatal(err)
	}
	if !other.Equal(x509.NewCertPool()) {
		t.Error("the caller's pool was modified")
	}
}

func TestLoadCertPool(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	pool, err := LoadCertPool(writeCA(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	sys, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("no system pool: %v", err)
	}
	if pool.Equal(sys) {
		t.Error("the CA was not added")
	}
	if _, err := srv.Certificate().Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("verify with loaded pool: %v", err)
	}
}

// A server that offers HTTP/2 is spoken to in HTTP/1.1, and the pool keeps an idle connection
// for every request the handler can have in flight (Go's default keeps two per host).
func TestNewHTTPClientSpeaksHTTP11AndKeepsConnections(t *testing.T) {
	var mu sync.Mutex
	protos := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto]++
		mu.Unlock()
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c, err := NewHTTPClient(writeCA(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, err := c.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if protos["HTTP/1.1"] != 8 || len(protos) != 1 {
		t.Errorf("protocols used: %v, want HTTP/1.1 only", protos)
	}
	if n := c.Transport.(*http.Transport).MaxIdleConnsPerHost; n < 16 {
		t.Errorf("MaxIdleConnsPerHost = %d, want room for every session and sign-in", n)
	}
}
