package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/azemu"
)

// readFHIR ends the run as a client granted FHIR access would start its day: it reads its
// secret from Key Vault (here as the operator, who may read every secret), gets a token for the
// FHIR service with it and searches Patient. It prints how many resources came back, never the
// secret, and reports whether every such client could read.
func (l *stack) readFHIR(ctx context.Context) bool {
	ok := true
	for _, ex := range l.examples {
		if !ex.fhir {
			continue
		}
		if !ex.registered {
			l.say("FHIR: %s was not registered, so it cannot read the FHIR service", ex.client)
			ok = false
			continue
		}
		url := l.emu.Endpoints().FHIRServices[0].URL
		n, err := readPatients(ctx, l.emu, ex.client, url)
		if err != nil {
			l.say("FHIR: %s could not read %s: %v", ex.client, url, err)
			ok = false
			continue
		}
		l.say("FHIR: %s read %d Patient resource(s) from %s, signed in with its secret from Key Vault (not shown)", ex.client, n, url)
	}
	return ok
}

// readPatients signs in as a client with its latest secret from Key Vault and counts the
// entries of GET <url>/Patient.
func readPatients(ctx context.Context, emu *azemu.Server, client, url string) (int, error) {
	ep := emu.Endpoints()
	var operator = ep.Clients[0]
	for _, c := range ep.Clients {
		if c.Name == azemu.OperatorClientName {
			operator = c
		}
	}
	co := azcore.ClientOptions{Transport: emu.Client(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.AuthorityHost}}
	opCred, err := azidentity.NewClientSecretCredential(ep.TenantID, operator.ClientID, operator.ClientSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	if err != nil {
		return 0, err
	}
	kv, err := azsecrets.NewClient(ep.KeyVaultURL, opCred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: emu.Client()}, DisableChallengeResourceVerification: true})
	if err != nil {
		return 0, err
	}
	sec, err := kv.GetSecret(ctx, client+"-client-secret", "", nil)
	if err != nil {
		return 0, fmt.Errorf("reading its secret from Key Vault: %w", err)
	}
	appID := sec.Tags["appId"]
	if sec.Value == nil || appID == nil {
		return 0, fmt.Errorf("its Key Vault secret has no value or no appId tag")
	}
	cred, err := azidentity.NewClientSecretCredential(ep.TenantID, *appID, *sec.Value, &azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	sec.Value = nil
	if err != nil {
		return 0, err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{url + "/.default"}})
	if err != nil {
		return 0, fmt.Errorf("signing in for %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/Patient", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/fhir+json")
	res, err := emu.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return 0, err
	}
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /Patient answered %d: %s", res.StatusCode, body)
	}
	var bundle struct {
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(body, &bundle); err != nil {
		return 0, fmt.Errorf("GET /Patient answered a body that is not a Bundle: %w", err)
	}
	return len(bundle.Entry), nil
}
