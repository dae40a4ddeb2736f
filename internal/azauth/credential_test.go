package azauth

import (
	"strings"
	"testing"
)

func TestNewCredentialRules(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
		kind    string
	}{
		{name: "neither", opts: Options{}, wantErr: "no credential configured", kind: "none"},
		{name: "both", opts: Options{ClientSecret: "s3cr3t~value", ManagedIdentity: true, TenantID: "t", ClientID: "c"}, wantErr: "choose one", kind: "ambiguous"},
		{name: "secret without tenant", opts: Options{ClientSecret: "s3cr3t~value", ClientID: "c"}, wantErr: "tenant ID"},
		{name: "secret without client", opts: Options{ClientSecret: "s3cr3t~value", TenantID: "t"}, wantErr: "client ID"},
		{name: "plain http authority", opts: Options{ClientSecret: "s3cr3t~value", TenantID: "t", ClientID: "c", AuthorityHost: "http://127.0.0.1:1"}, wantErr: "want https"},
		{name: "missing CA file", opts: Options{ManagedIdentity: true, CAFile: "/nonexistent/ca.pem"}, wantErr: "CA file"},
		{name: "client secret", opts: Options{ClientSecret: "s3cr3t~value", TenantID: "t", ClientID: "c"}, kind: "client-secret"},
		{name: "emulator authority", opts: Options{ClientSecret: "s3cr3t~value", TenantID: "t", ClientID: "c", AuthorityHost: "https://127.0.0.1:8443"}, kind: "client-secret"},
		{name: "system-assigned", opts: Options{ManagedIdentity: true}, kind: "managed-identity (system-assigned)"},
		{name: "user-assigned", opts: Options{ManagedIdentity: true, ClientID: "c"}, kind: "managed-identity (user-assigned)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := NewCredential(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil || cred == nil {
				t.Fatalf("NewCredential: %v", err)
			}
			if tt.opts.ClientSecret != "" && strings.Contains(errString(err), tt.opts.ClientSecret) {
				t.Errorf("error contains the client secret: %v", err)
			}
			if tt.kind != "" && tt.opts.Kind() != tt.kind {
				t.Errorf("Kind() = %q, want %q", tt.opts.Kind(), tt.kind)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestMicrosoftAuthority(t *testing.T) {
	tests := []struct {
		host    string
		want    bool
		wantErr bool
	}{
		{host: "https://login.microsoftonline.com", want: true},
		{host: "https://login.microsoftonline.com/", want: true},
		{host: "https://LOGIN.MicrosoftOnline.us", want: true},
		{host: "https://login.chinacloudapi.cn/", want: true},
		{host: "https://127.0.0.1:8443", want: false},
		{host: "https://login.microsoftonline.com.evil.example", want: false},
		{host: "http://login.microsoftonline.com", wantErr: true},
		{host: "login.microsoftonline.com", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := microsoftAuthority(tt.host)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
