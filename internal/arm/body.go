package arm

import "encoding/json"

// armMessage reads error.message of ARM's error body.
func armMessage(body []byte) string {
	var b struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return b.Error.Message
}
