// Package endpoints is the shape of endpoints.json, the file in which the local Azure (azemu)
// says where its services listen and which identities it seeded, and the one way to read it. It
// imports the standard library only, so the product's CLI can read the file without linking
// anything of the local Azure.
package endpoints

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileName is the file's name in the directory azemu writes it to.
const FileName = "endpoints.json"

// Endpoints is what a client needs to reach the local Azure.
type Endpoints struct {
	TenantID                   string          `json:"tenantId"`
	AuthorityHost              string          `json:"authorityHost"`
	GraphBaseURL               string          `json:"graphBaseUrl"`
	KeyVaultURL                string          `json:"keyVaultUrl"`
	ManagedIdentity            ManagedIdentity `json:"managedIdentity"`
	ServiceBusConnectionString string          `json:"serviceBusConnectionString"`
	Clients                    []Client        `json:"clients"`
	// ARMEndpoint and ARMAudience are Resource Manager (role assignments, subscriptions) and
	// the audience its tokens carry; SubscriptionID is the one subscription. The appreg
	// settings ARM_ENDPOINT and ARM_AUDIENCE take them as they are.
	ARMEndpoint    string `json:"armEndpoint,omitempty"`
	ARMAudience    string `json:"armAudience,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// KeyVaultID and ServiceBusID are the ARM ids of the vault and the namespace: the scopes
	// their data roles are assigned at.
	KeyVaultID   string `json:"keyVaultResourceId,omitempty"`
	ServiceBusID string `json:"serviceBusResourceId,omitempty"`
	// FHIRServices are the FHIR services: their ARM ids (the role-assignment scope) and base
	// URLs (also their token audience).
	FHIRServices []FHIRService `json:"fhirServices,omitempty"`
	// CAFile is the test CA's certificate: relative to the file's directory as written, absolute
	// once Read.
	CAFile string `json:"caFile"`
	// Controls is where the emulators' test controls live: <origin>/_emu/.
	Controls string `json:"controls"`
}

// ManagedIdentity is the App Service managed-identity endpoint: a process that sets
// IDENTITY_ENDPOINT and IDENTITY_HEADER to these values gets tokens as ClientID.
type ManagedIdentity struct {
	Endpoint string `json:"endpoint"`
	Header   string `json:"header"`
	ClientID string `json:"clientId"`
}

// FHIRService is a FHIR service of the local Azure.
type FHIRService struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// FHIRSetting is the value of appreg's FHIR_SERVICES setting for these services: id=url, …
func (e Endpoints) FHIRSetting() string {
	var parts []string
	for _, f := range e.FHIRServices {
		parts = append(parts, f.ID+"="+f.URL)
	}
	return strings.Join(parts, ",")
}

// Client is a seeded app registration with a client secret.
type Client struct {
	Name         string `json:"name"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// Read loads an endpoints.json. path is the file or the directory that holds it; a relative
// CAFile is made absolute against that directory, so the result works from any working
// directory.
func Read(path string) (Endpoints, error) {
	var e Endpoints
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, FileName)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%s: not an %s: %w", path, FileName, err)
	}
	if e.CAFile != "" && !filepath.IsAbs(e.CAFile) {
		e.CAFile = filepath.Join(filepath.Dir(path), e.CAFile)
	}
	return e, nil
}
