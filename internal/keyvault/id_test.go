package keyvault

import "testing"

func TestParseID(t *testing.T) {
	tests := []struct {
		name, id      string
		wantName, ver string
		wantErr       bool
	}{
		{name: "with version", id: "https://v.vault.azure.net/secrets/app-client-secret/0123456789abcdef0123456789abcdef", wantName: "app-client-secret", ver: "0123456789abcdef0123456789abcdef"},
		{name: "without version", id: "https://v.vault.azure.net/secrets/app-client-secret", wantName: "app-client-secret"},
		{name: "trailing slash", id: "https://127.0.0.1:8443/secrets/a/", wantName: "a"},
		{name: "port and deleted", id: "https://127.0.0.1:8443/deletedsecrets/a", wantName: "a"},
		{name: "relative", id: "/secrets/a/b", wantErr: true},
		{name: "keys", id: "https://v.vault.azure.net/keys/a/b", wantErr: true},
		{name: "too deep", id: "https://v.vault.azure.net/secrets/a/b/c", wantErr: true},
		{name: "no name", id: "https://v.vault.azure.net/secrets/", wantErr: true},
		{name: "bad name", id: "https://v.vault.azure.net/secrets/a_b/1", wantErr: true},
		{name: "not a URL", id: "::", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, ver, err := parseID(tt.id)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if name != tt.wantName || ver != tt.ver {
				t.Errorf("got (%q, %q), want (%q, %q)", name, ver, tt.wantName, tt.ver)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "localhost": true, "LOCALHOST": true, "127.0.0.2": true,
		"myvault.vault.azure.net": false, "10.0.0.4": false, "localhost.example": false, "": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"lab-results-sync-client-secret": true, "A1": true, "": false, "a_b": false, "a/b": false,
		"a b": false, string(make([]byte, 128)): false,
	} {
		if err := checkName("op", name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
