package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunFlagsAndSettings(t *testing.T) {
	valid := map[string]string{
		"AZURE_TENANT_ID": "11111111-2222-3333-4444-555555555555", "KEY_VAULT_URL": "https://v.vault.azure.net/",
		"ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		wantOut string
		wantErr string
	}{
		{"Help", []string{"--help"}, nil, 0, "", "ROTATE_BEFORE"},
		{"BadFlag", []string{"--nope"}, nil, 2, "", "flag provided but not defined"},
		{"CheckValid", []string{"--check", "--offline"}, valid, 0, "settings are valid", ""},
		{"CheckInvalid", []string{"--check"}, map[string]string{"KEY_VAULT_URL": "http://v"}, 2, "", "setting AZURE_TENANT_ID is required"},
		{"NoPort", nil, valid, 2, "", "setting FUNCTIONS_CUSTOMHANDLER_PORT is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("run = %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
		})
	}
}
