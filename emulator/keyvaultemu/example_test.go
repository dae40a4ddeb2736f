package keyvaultemu_test

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/keyvaultemu"
)

// The unmodified azsecrets client against the emulator: trust its CA through Client(), and skip
// the challenge's domain check because the vault is at 127.0.0.1, not *.vault.azure.net.
func Example() {
	srv, err := keyvaultemu.NewServer(nil)
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	// Any azcore.TokenCredential whose tokens the emulator's issuer signed; azidentity against
	// the Entra emulator in real use.
	cred := &credential{issuer: srv.Issuer(), clk: &clock{t: time.Now()}}
	client, err := azsecrets.NewClient(srv.URL(), cred, &azsecrets.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: srv.Client()},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		panic(err)
	}
	resp, err := client.SetSecret(context.Background(), "lab-results-sync-client-secret",
		azsecrets.SetSecretParameters{Value: to.Ptr("never printed"), ContentType: to.Ptr("text/plain")}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.ID.Name(), len(resp.ID.Version()), *resp.Attributes.RecoveryLevel)
	fmt.Println(srv.Stats().Operations["setSecret"], "set call")
	// Output:
	// lab-results-sync-client-secret 32 Recoverable+Purgeable
	// 1 set call
}
