package funchost

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type localSettingsFile struct {
	IsEncrypted bool                       `json:"IsEncrypted"`
	Values      map[string]json.RawMessage `json:"Values"`
}

// LoadSettings reads the Values of a local.settings.json file, the app
// settings Core Tools uses when it runs an app locally.
func LoadSettings(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f localSettingsFile
	if err := decodeJSONC(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.IsEncrypted {
		return nil, fmt.Errorf("%s: IsEncrypted: true is not supported; decrypt it with `func settings decrypt`", path)
	}
	out := make(map[string]string, len(f.Values))
	var bad []string
	for k, v := range f.Values {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			bad = append(bad, k)
			continue
		}
		out[k] = s
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("%s: Values.%s: must be a string (quote numbers and booleans)", path, strings.Join(bad, ", Values."))
	}
	return out, nil
}
