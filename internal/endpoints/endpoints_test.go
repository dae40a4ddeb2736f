package endpoints_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"appreg/internal/endpoints"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, endpoints.FileName)
	if err := os.WriteFile(file, []byte(`{"tenantId":"t","serviceBusConnectionString":"Endpoint=sb://x","caFile":"ca.pem",
		"managedIdentity":{"endpoint":"http://127.0.0.1:1/msi/token","header":"h","clientId":"c"},"clients":[{"name":"n","clientId":"i","clientSecret":"s"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`[`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"File", file, ""},
		{"Directory", dir, ""},
		{"Missing", filepath.Join(dir, "nope.json"), "no such file"},
		{"NotJSON", bad, "not an endpoints.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := endpoints.Read(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ep.TenantID != "t" || ep.CAFile != filepath.Join(dir, "ca.pem") || ep.ManagedIdentity.ClientID != "c" || len(ep.Clients) != 1 {
				t.Errorf("read %+v", ep)
			}
		})
	}
}
