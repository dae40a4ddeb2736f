package registrar

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var testLimits = Limits{MaxLifetimeDays: 180, DefaultLifetimeDays: 90}

func TestParseRegistration(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		got, reasons := ParseRegistration([]byte(`{
			"requestId": "7d0c4c1e-5d2a-4d55-9b0e-0f3c2f1d9a10",
			"clientName": "lab-results-sync",
			"displayName": " Lab Results Sync (prod) ",
			"signInAudience": "AzureADMultipleOrgs",
			"redirectUris": ["https://labsync.example.org/auth/callback", "http://localhost:8080/cb", "https://labsync.example.org/auth/callback"],
			"secret": {"lifetimeDays": 30},
			"notes": "owner: integration team",
			"requestedBy": "alice@example.org"}`), testLimits)
		if len(reasons) > 0 {
			t.Fatalf("unexpected reasons: %+v", reasons)
		}
		want := Registration{
			RequestID: "7d0c4c1e-5d2a-4d55-9b0e-0f3c2f1d9a10", ClientName: "lab-results-sync",
			DisplayName: "Lab Results Sync (prod)", SignInAudience: AudienceMultipleOrgs,
			RedirectURIs: []string{"https://labsync.example.org/auth/callback", "http://localhost:8080/cb"},
			LifetimeDays: 30, Notes: "owner: integration team", RequestedBy: "alice@example.org",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ParseRegistration (-want +got):\n%s", diff)
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		got, reasons := ParseRegistration([]byte(`{"requestId":"r1","clientName":"abc","secret":null}`), testLimits)
		if len(reasons) > 0 {
			t.Fatalf("unexpected reasons: %+v", reasons)
		}
		if got.DisplayName != "abc" || got.SignInAudience != AudienceMyOrg || got.LifetimeDays != 90 {
			t.Errorf("defaults not applied: %+v", got)
		}
	})

	tests := []struct {
		name string
		body string
		want []Reason // compared on Code and Field
	}{
		{"NotJSON", `{"requestId":`, []Reason{{Code: RejectInvalidJSON}}},
		{"Array", `[1]`, []Reason{{Code: RejectInvalidJSON}}},
		{"TrailingData", `{"requestId":"r","clientName":"abc"} {}`, []Reason{{Code: RejectInvalidJSON}}},
		{"Null", `null`, []Reason{{Code: RejectInvalidJSON}}},
		{"TooLarge", `{"notes":"` + strings.Repeat("x", MaxMessageBytes) + `"}`, []Reason{{Code: RejectTooLarge}}},
		{"BadUTF8", "{\"clientName\":\"ab\xff\"}", []Reason{{Code: RejectInvalidJSON}}},
		{"Missing", `{}`, []Reason{{Code: RejectMissingField, Field: "requestId"}, {Code: RejectMissingField, Field: "clientName"}}},
		{"Unknown", `{"requestId":"r","clientName":"abc","ClientName":"x","secret":{"lifetimeDays":1,"value":"x"}}`,
			[]Reason{{Code: RejectUnknownField, Field: "secret.value"}, {Code: RejectUnknownField, Field: "ClientName"}}},
		{"WrongTypes", `{"requestId":7,"clientName":"abc","redirectUris":"https://a","secret":{"lifetimeDays":"90"},"notes":false}`,
			[]Reason{{Code: RejectWrongType, Field: "requestId"}, {Code: RejectWrongType, Field: "redirectUris"}, {Code: RejectWrongType, Field: "notes"}, {Code: RejectWrongType, Field: "secret.lifetimeDays"}}},
		{"FractionalLifetime", `{"requestId":"r","clientName":"abc","secret":{"lifetimeDays":9.5}}`, []Reason{{Code: RejectWrongType, Field: "secret.lifetimeDays"}}},
		{"SecretNotObject", `{"requestId":"r","clientName":"abc","secret":90}`, []Reason{{Code: RejectWrongType, Field: "secret"}}},
		{"BadRequestID", `{"requestId":"has space","clientName":"abc"}`, []Reason{{Code: RejectInvalidRequestID, Field: "requestId"}}},
		{"UpperClientName", `{"requestId":"r","clientName":"Lab"}`, []Reason{{Code: RejectInvalidClientName, Field: "clientName"}}},
		{"ShortClientName", `{"requestId":"r","clientName":"ab"}`, []Reason{{Code: RejectInvalidClientName, Field: "clientName"}}},
		{"LongClientName", `{"requestId":"r","clientName":"a` + strings.Repeat("b", 63) + `"}`, []Reason{{Code: RejectInvalidClientName, Field: "clientName"}}},
		{"PersonalAudience", `{"requestId":"r","clientName":"abc","signInAudience":"AzureADandPersonalMicrosoftAccount"}`, []Reason{{Code: RejectUnsupportedAudience, Field: "signInAudience"}}},
		{"HTTPRedirect", `{"requestId":"r","clientName":"abc","redirectUris":["http://example.org/cb"]}`, []Reason{{Code: RejectInvalidRedirectURI, Field: "redirectUris[0]"}}},
		{"Fragment", `{"requestId":"r","clientName":"abc","redirectUris":["https://a.example/cb#x"]}`, []Reason{{Code: RejectInvalidRedirectURI, Field: "redirectUris[0]"}}},
		{"Wildcard", `{"requestId":"r","clientName":"abc","redirectUris":["https://ok.example/","https://*.example/cb"]}`, []Reason{{Code: RejectInvalidRedirectURI, Field: "redirectUris[1]"}}},
		{"Relative", `{"requestId":"r","clientName":"abc","redirectUris":["/cb"]}`, []Reason{{Code: RejectInvalidRedirectURI, Field: "redirectUris[0]"}}},
		{"TooManyRedirects", `{"requestId":"r","clientName":"abc","redirectUris":[` + strings.TrimSuffix(strings.Repeat(`"https://a.example/",`, 21), ",") + `]}`, []Reason{{Code: RejectTooManyRedirectURIs, Field: "redirectUris"}}},
		{"ZeroLifetime", `{"requestId":"r","clientName":"abc","secret":{"lifetimeDays":0}}`, []Reason{{Code: RejectInvalidLifetime, Field: "secret.lifetimeDays"}}},
		{"LongLifetime", `{"requestId":"r","clientName":"abc","secret":{"lifetimeDays":181}}`, []Reason{{Code: RejectInvalidLifetime, Field: "secret.lifetimeDays"}}},
		{"LongNotes", `{"requestId":"r","clientName":"abc","notes":"` + strings.Repeat("n", 1025) + `"}`, []Reason{{Code: RejectTooLong, Field: "notes"}}},
		// D6: encoding/json keeps the last of two equal names; a request must not say two things.
		{"DuplicateKey", `{"requestId":"r","clientName":"Bad Name!","clientName":"ok-name"}`, []Reason{{Code: RejectDuplicateField, Field: "clientName"}}},
		{"DuplicateNestedKey", `{"requestId":"r","clientName":"abc","secret":{"lifetimeDays":10000,"lifetimeDays":30}}`, []Reason{{Code: RejectDuplicateField, Field: "secret.lifetimeDays"}}},
		{"DuplicateInArray", `{"requestId":"r","clientName":"abc","redirectUris":[{"a":1,"a":2}]}`, []Reason{{Code: RejectDuplicateField, Field: "redirectUris[0].a"}}},
		{"StrayBrace", `{"requestId":"r","clientName":"abc"}}`, []Reason{{Code: RejectInvalidJSON}}},
		{"StrayBracket", `{"requestId":"r","clientName":"abc"} ]`, []Reason{{Code: RejectInvalidJSON}}},
		{"ReplacementCharacter", `{"requestId":"r","clientName":"abc","displayName":"Lab \uFFFD Sync"}`, []Reason{{Code: RejectInvalidCharacter, Field: "displayName"}}},
		{"ReplacementCharacterInURI", "{\"requestId\":\"r\",\"clientName\":\"abc\",\"redirectUris\":[\"https://a.example/\uFFFD\"]}", []Reason{{Code: RejectInvalidCharacter, Field: "redirectUris[0]"}}},
		{"ControlInDisplayName", `{"requestId":"r","clientName":"abc","displayName":"a\u0007b"}`, []Reason{{Code: RejectInvalidDisplayName, Field: "displayName"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, reasons := ParseRegistration([]byte(tt.body), testLimits)
			got := make([]Reason, len(reasons))
			for i, r := range reasons {
				if r.Message == "" {
					t.Errorf("reason %+v has no message", r)
				}
				got[i] = Reason{Code: r.Code, Field: r.Field}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

// D3: one reason per bad member made a 63 KiB request produce a 0.5 MB event that Service Bus
// refused, so the rejection was never announced and the message was dead-lettered silently.
func TestRejectionReasonsAreCapped(t *testing.T) {
	var unknown, uris strings.Builder
	for i := range 6000 { // just under MaxMessageBytes, as in the run that found it
		fmt.Fprintf(&unknown, `,"m%d":1`, i)
	}
	uris.WriteString(strings.TrimSuffix(strings.Repeat(`"x",`, 12000), ","))
	bodies := map[string]string{
		"UnknownMembers": `{"requestId":"r","clientName":"abc"` + unknown.String() + `}`,
		"RedirectURIs":   `{"requestId":"r","clientName":"abc","redirectUris":[` + uris.String() + `]}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			_, reasons := ParseRegistration([]byte(body), Limits{MaxLifetimeDays: 180, DefaultLifetimeDays: 90})
			if len(reasons) != MaxReasons {
				t.Fatalf("got %d reasons, want %d", len(reasons), MaxReasons)
			}
			last := reasons[len(reasons)-1]
			if last.Code != RejectMoreReasons || !strings.Contains(last.Message, "more") {
				t.Errorf("last reason = %+v, want a %s summary", last, RejectMoreReasons)
			}
			b, _ := json.Marshal(Event{Type: EventRejected, RequestID: "r", Reasons: reasons})
			if len(b) > 16<<10 {
				t.Errorf("rejected event is %d bytes; want it well under Service Bus's 256 KiB", len(b))
			}
		})
	}
}

func TestParseRotationJob(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  RotationJob
		codes []string
	}{
		{"NearExpiry", `{"clientName":"abc","appId":"11111111-2222-3333-4444-555555555555","keyId":"aaaaaaaa-2222-3333-4444-555555555555","reason":"near-expiry"}`,
			RotationJob{ClientName: "abc", AppID: "11111111-2222-3333-4444-555555555555", KeyID: "aaaaaaaa-2222-3333-4444-555555555555", Reason: ReasonNearExpiry}, nil},
		{"DefaultsToOnDemand", `{"clientName":"abc"}`, RotationJob{ClientName: "abc", Reason: ReasonOnDemand}, nil},
		{"CompromisedRevokes", `{"clientName":"abc","reason":"compromised"}`, RotationJob{ClientName: "abc", Reason: ReasonCompromised, RevokeOld: true}, nil},
		{"BadReason", `{"clientName":"abc","reason":"because"}`, RotationJob{ClientName: "abc", Reason: "because"}, []string{RejectInvalidReason}},
		{"BadIDs", `{"clientName":"abc","appId":"x","keyId":"y"}`, RotationJob{ClientName: "abc", AppID: "x", KeyID: "y", Reason: ReasonOnDemand}, []string{RejectInvalidID, RejectInvalidID}},
		{"Unknown", `{"clientName":"abc","secretText":"x"}`, RotationJob{ClientName: "abc", Reason: ReasonOnDemand}, []string{RejectUnknownField}},
		{"BadTime", `{"clientName":"abc","requestedAt":"yesterday"}`, RotationJob{ClientName: "abc", Reason: ReasonOnDemand}, []string{RejectWrongType}},
		{"Missing", `{"revokeOld":"yes"}`, RotationJob{Reason: ReasonOnDemand}, []string{RejectMissingField, RejectWrongType}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reasons := ParseRotationJob([]byte(tt.body))
			var codes []string
			for _, r := range reasons {
				codes = append(codes, r.Code)
			}
			if diff := cmp.Diff(tt.codes, codes); diff != "" {
				t.Errorf("codes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("job (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseRegistration(f *testing.F) {
	f.Add([]byte(`{"requestId":"r","clientName":"abc","secret":{"lifetimeDays":5},"redirectUris":["https://a/"]}`))
	f.Add([]byte(`{"secret":{"secret":{}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, reasons := ParseRegistration(body, testLimits)
		if len(reasons) == 0 {
			if !clientNameRE.MatchString(r.ClientName) || r.LifetimeDays < 1 || r.LifetimeDays > 180 || len(r.RedirectURIs) > maxRedirectURIs {
				t.Fatalf("accepted an invalid request: %+v", r)
			}
		}
	})
}

// FuzzScanStrict holds scanStrict to encoding/json's idea of one valid value: it may add
// duplicate names as findings, never accept or refuse differently.
func FuzzScanStrict(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":1,"c":2}]}}`, `{}}`, `[1,2]`, `"s"`, `{"a":[]} `, `{"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := scanStrict(body)
		if valid := json.Valid(body); valid != (err == nil) {
			t.Fatalf("json.Valid=%v but scanStrict err=%v for %q", valid, err, body)
		}
	})
}
