package funchost

import (
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func TestCredentialChoice(t *testing.T) {
	tests := []struct {
		name string
		conn Connection
		want string
	}{
		{"Default", Connection{FullyQualifiedNamespace: "ns"}, fmt.Sprintf("%T", &azidentity.DefaultAzureCredential{})},
		{"ManagedIdentity", Connection{FullyQualifiedNamespace: "ns", Credential: "managedidentity"}, fmt.Sprintf("%T", &azidentity.ManagedIdentityCredential{})},
		{"UserAssigned", Connection{FullyQualifiedNamespace: "ns", ClientID: "11111111-2222-3333-4444-555555555555"}, fmt.Sprintf("%T", &azidentity.ManagedIdentityCredential{})},
		{"ClientSecret", Connection{FullyQualifiedNamespace: "ns", ClientID: "11111111-2222-3333-4444-555555555555",
			TenantID: "22222222-2222-3333-4444-555555555555", clientSecret: "s"}, fmt.Sprintf("%T", &azidentity.ClientSecretCredential{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := credential(tt.conn)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", cred); got != tt.want {
				t.Errorf("credential %s, want %s", got, tt.want)
			}
		})
	}
}
