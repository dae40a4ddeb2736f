package token

import (
	"errors"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	iss, err := NewIssuer(clock)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewIssuer(clock)
	if err != nil {
		t.Fatal(err)
	}
	good, err := iss.Sign(Claims{Audience: "https://vault.azure.net", TenantID: "t", AppID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Sign(Claims{Audience: "https://vault.azure.net"})
	expired, _ := iss.Sign(Claims{Audience: "https://vault.azure.net", ExpiresAt: now.Add(-time.Second).Unix()})

	tests := []struct {
		name     string
		raw      string
		audience string
		want     error
	}{
		{"OK", good, "https://vault.azure.net", nil},
		{"OKTrailingSlash", good, "https://vault.azure.net/", nil},
		{"WrongAudience", good, "https://graph.microsoft.com", ErrAudience},
		{"OtherKey", foreign, "https://vault.azure.net", ErrSignature},
		{"Expired", expired, "https://vault.azure.net", ErrExpired},
		{"Garbage", "a.b", "https://vault.azure.net", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := iss.Verify(tt.raw, tt.audience)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify() error = %v, want %v", err, tt.want)
			}
			if err == nil && (c.TenantID != "t" || c.AppID != "a" || c.ExpiresAt != now.Add(time.Hour).Unix()) {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer  x ": "x", "Basic abc": "", "": ""} {
		if got := Bearer(in); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", in, got, want)
		}
	}
}
