package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestUnwrapValue(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"DoubleEncodedObject", `"\"{\\\"a\\\":1}\""`, `{"a":1}`},
		{"PlainStringObject", `"{\"a\":1}"`, `{"a":1}`},
		{"Object", ` {"a":1}`, `{"a":1}`},
		{"DoubleEncodedText", `"\"aaaaa\""`, `aaaaa`},
		{"PlainText", `"aaaaa"`, `aaaaa`},
		{"Base64JSON", `"eyJhIjoxfQ=="`, `{"a":1}`},
		{"Number", `1`, `1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(unwrapValue([]byte(tt.raw))); got != tt.want {
				t.Errorf("unwrapValue(%s) = %s, want %s", tt.raw, got, tt.want)
			}
		})
	}
}

// The golden envelopes in testdata are written in the shapes real hosts send (see the README of
// testdata): double-encoded strings, numbers as strings, sys metadata.
func TestParseGoldenEnvelopes(t *testing.T) {
	tests := []struct {
		file, binding, body, messageID string
		deliveryCount                  int
	}{
		{"servicebus-double-encoded.json", "request", `{"requestId":"r-1","clientName":"lab-sync"}`, "r-1", 3},
		{"servicebus-plain.json", "request", `{"requestId":"r-2","clientName":"lab-sync"}`, "r-2", 1},
		{"timer.json", "timer", `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			inv, err := parseInvocation(raw)
			if err != nil {
				t.Fatal(err)
			}
			body, err := inv.message(tt.binding)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, body); err == nil {
				body = compact.Bytes()
			}
			if string(body) != tt.body {
				t.Errorf("body = %s, want %s", body, tt.body)
			}
			if got := inv.metaString("MessageId"); got != tt.messageID {
				t.Errorf("MessageId = %q, want %q", got, tt.messageID)
			}
			if tt.deliveryCount > 0 {
				if n, err := inv.metaInt("DeliveryCount"); err != nil || n != tt.deliveryCount {
					t.Errorf("DeliveryCount = %d, %v; want %d", n, err, tt.deliveryCount)
				}
			}
		})
	}
}
