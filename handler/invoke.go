package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// invocation is the Functions host's request to a custom handler: trigger and input values under
// Data, keyed by binding name, and binding metadata under Metadata.
type invocation struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// invokeResult is the reply the host expects. The host fails the invocation unless it is served
// as application/json, whatever the status.
type invokeResult struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

func parseInvocation(body []byte) (invocation, error) {
	var inv invocation
	if err := json.Unmarshal(body, &inv); err != nil {
		return inv, fmt.Errorf("invocation body is not the host's JSON envelope: %w", err)
	}
	return inv, nil
}

// message returns the trigger value of binding name as raw bytes. The host JSON-encodes string
// values a second time ("\"{\\\"a\\\":1}\""); it may also pass a JSON object as is, or a byte[]
// body as base64. All three forms yield the message body the sender sent.
func (inv invocation) message(name string) ([]byte, error) {
	raw, ok := inv.Data[name]
	if !ok && len(inv.Data) == 1 {
		for _, v := range inv.Data {
			raw, ok = v, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("invocation has no Data[%q]", name)
	}
	return unwrapValue(raw), nil
}

func unwrapValue(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return raw // an object, array, number or literal: already the body
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return raw
	}
	// Double-encoded: the string's content is itself a JSON string.
	if t := strings.TrimSpace(s); strings.HasPrefix(t, `"`) {
		var inner string
		if err := json.Unmarshal([]byte(t), &inner); err == nil {
			return []byte(inner)
		}
	}
	if t := strings.TrimSpace(s); !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		if b, err := base64.StdEncoding.DecodeString(t); err == nil && utf8.Valid(b) && json.Valid(b) {
			return b
		}
	}
	return []byte(s)
}

// metaString reads a string metadata value in either encoding.
func (inv invocation) metaString(key string) string {
	raw, ok := inv.Metadata[key]
	if !ok {
		return ""
	}
	b := unwrapValue(raw)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) == nil {
			return s
		}
	}
	if string(b) == "null" {
		return ""
	}
	return string(b)
}

// metaTime reads a time metadata value. The host writes EnqueuedTimeUtc as .NET's unspecified
// kind ("2026-03-04T05:06:01", UTC by name) and other times with an offset; either parses.
func (inv invocation) metaTime(key string) time.Time {
	s := strings.TrimSpace(inv.metaString(key))
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// enqueuedTime is the latest moment the message can have been enqueued. The host writes
// EnqueuedTimeUtc truncated to whole seconds, so the real time lies up to a second later; the
// retry budget counts from the end of that second, so the last delivery never gives up before
// RETRY_BUDGET has passed (it may run up to a second past it).
func enqueuedTime(inv invocation) time.Time {
	t := inv.metaTime("EnqueuedTimeUtc")
	if t.IsZero() || t.Nanosecond() != 0 {
		return t
	}
	return t.Add(time.Second)
}

// metaInt reads a numeric metadata value; the host sends numbers as strings ("DeliveryCount":"1").
func (inv invocation) metaInt(key string) (int, error) {
	s := inv.metaString(key)
	if s == "" {
		return 0, errors.New("missing")
	}
	return strconv.Atoi(strings.TrimSpace(s))
}
