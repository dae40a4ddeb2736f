package graph

import (
	"testing"
)

func TestScopeAndBaseURL(t *testing.T) {
	tests := []struct {
		base      string
		wantBase  string
		wantScope string
		wantErr   bool
	}{
		{"", "https://graph.microsoft.com", "https://graph.microsoft.com/.default", false},
		{"https://graph.microsoft.com/", "https://graph.microsoft.com", "https://graph.microsoft.com/.default", false},
		{"https://graph.microsoft.com/v1.0", "https://graph.microsoft.com", "https://graph.microsoft.com/.default", false},
		{"https://graph.microsoft.us", "https://graph.microsoft.us", "https://graph.microsoft.us/.default", false},
		{"https://dod-graph.microsoft.us", "https://dod-graph.microsoft.us", "https://dod-graph.microsoft.us/.default", false},
		{"https://microsoftgraph.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/.default", false},
		{"https://127.0.0.1:8443", "https://127.0.0.1:8443", "https://graph.microsoft.com/.default", false},
		{"http://127.0.0.1:8443", "", "", true},
		{"graph.microsoft.com", "", "", true},
		{"https://graph.microsoft.com?x=1", "", "", true},
		{"https://user:pw@graph.microsoft.com", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			u, err := parseBaseURL(tt.base)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseBaseURL(%q) error = %v, want error %v", tt.base, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := u.String(); got != tt.wantBase {
				t.Errorf("base = %q, want %q", got, tt.wantBase)
			}
			if got := scopeFor(u); got != tt.wantScope {
				t.Errorf("scope = %q, want %q", got, tt.wantScope)
			}
		})
	}
}

func TestNewRejectsNilCredential(t *testing.T) {
	if _, err := New(nil, nil); err == nil {
		t.Fatal("New(nil, nil) succeeded")
	}
}
