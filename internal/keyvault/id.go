package keyvault

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// validName is Key Vault's rule for object names. Checking it here turns a bad name into
// CodeInvalid before any request, and keeps anything but a plain path segment out of the URL.
var validName = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

// parseID splits a secret identifier, https://<vault>/secrets/<name>[/<version>], into its name
// and version. The list of secrets returns ids without a version; the version is then "".
func parseID(id string) (name, version string, err error) {
	u, err := url.Parse(id)
	if err != nil {
		return "", "", fmt.Errorf("secret id %q: %w", id, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", "", fmt.Errorf("secret id %q: not an absolute URL", id)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || (parts[0] != "secrets" && parts[0] != "deletedsecrets") {
		return "", "", fmt.Errorf("secret id %q: want /secrets/<name>[/<version>]", id)
	}
	name = parts[1]
	if !validName.MatchString(name) {
		return "", "", fmt.Errorf("secret id %q: bad name", id)
	}
	if len(parts) == 3 {
		version = parts[2]
	}
	return name, version, nil
}
