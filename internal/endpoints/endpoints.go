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
