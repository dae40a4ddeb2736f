package azemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"appreg/emulator/emu"
)

// outcome is what one call of the operation under test came back with: ok, or a failure code (an
// HTTP status, or Service Bus's AMQP condition) and the wait it asked for, in seconds.
type outcome struct {
	ok         bool
	code       string
	retryAfter string
}

// TestControlPlane drives every service through the same /_emu/<service>/ routes on azemu's one
// HTTPS origin: a fault, a throttle, a standing latency, the statistics they leave, the state the
// calls created, a control error, and a reset that clears all of it. Only the operation and how
// one call of it is made differ per service; the controls do not.
func TestControlPlane(t *testing.T) {
	s := start(t)
	ep := s.Endpoints()
	client := ep.Clients[0]
	ctx := t.Context()

	// Tokens first: a reset keeps them valid, so the Entra case starts from zero like the others.
	token := func(scope string) string {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {client.ClientID},
			"client_secret": {client.ClientSecret}, "scope": {scope}}
		res, err := s.Client().PostForm(s.URL()+"/"+ep.TenantID+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.AccessToken == "" {
			t.Fatalf("token for %s: %d %v", scope, res.StatusCode, err)
		}
		return body.AccessToken
	}
	graphToken, vaultToken := token("https://graph.microsoft.com/.default"), token("https://vault.azure.net/.default")

	sb, err := azservicebus.NewClientFromConnectionString(ep.ServiceBusConnectionString, &azservicebus.ClientOptions{
		RetryOptions: azservicebus.RetryOptions{MaxRetries: -1}, // one call is one send
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	sender, err := sb.NewSender("app-registration-events", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Attach the link before the counting starts, and start from a clean slate everywhere.
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("warm-up")}, nil); err != nil {
		t.Fatal(err)
	}
	s.control(t, "POST", "/_emu/reset", "").must(t, http.StatusNoContent)

	httpCall := func(method, path, tok, body string) outcome {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, s.URL()+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		switch {
		case strings.HasPrefix(body, "{"):
			req.Header.Set("Content-Type", "application/json")
		case body != "":
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return outcome{ok: res.StatusCode < 300, code: strconv.Itoa(res.StatusCode), retryAfter: res.Header.Get("Retry-After")}
	}
	wait := regexp.MustCompile(`wait (\d+) seconds`)
	calls := 0
	tests := []struct {
		service      string
		op           string
		call         func() outcome
		faultCode    string // what status 503 comes back as
		throttleCode string // what a throttle comes back as
		created      func(state string) bool
	}{
		{
			service: "entra", op: "token",
			call: func() outcome {
				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {client.ClientID},
					"client_secret": {client.ClientSecret}, "scope": {"https://vault.azure.net/.default"}}
				return httpCall("POST", "/"+ep.TenantID+"/oauth2/v2.0/token", "", form.Encode())
			},
			faultCode: "503", throttleCode: "429",
			created: func(state string) bool { return strings.Contains(state, client.ClientID) },
		},
		{
			service: "graph", op: "createApplication",
			call: func() outcome {
				calls++
				return httpCall("POST", "/v1.0/applications", graphToken, fmt.Sprintf(`{"displayName":"control-plane-probe-%d"}`, calls))
			},
			faultCode: "503", throttleCode: "429",
			created: func(state string) bool { return strings.Contains(state, "control-plane-probe") },
		},
		{
			service: "keyvault", op: "setSecret",
			call: func() outcome {
				return httpCall("PUT", "/secrets/control-plane-probe?api-version=7.4", vaultToken, `{"value":"v"}`)
			},
			faultCode: "503", throttleCode: "429",
			created: func(state string) bool { return strings.Contains(state, "control-plane-probe") },
		},
		{
			service: "servicebus", op: "send",
			call: func() outcome {
				err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("probe")}, nil)
				var ae *amqp.Error
				switch {
				case err == nil:
					return outcome{ok: true}
				case errors.As(err, &ae):
					o := outcome{code: string(ae.Condition)}
					if m := wait.FindStringSubmatch(ae.Description); m != nil {
						o.retryAfter = m[1]
					}
					return o
				}
				t.Fatalf("send: %v", err)
				return outcome{}
			},
			faultCode: "com.microsoft:server-busy", throttleCode: "com.microsoft:server-busy",
			created: func(state string) bool {
				var st struct {
					Entities []struct {
						Name   string
						Active int
					}
				}
				if err := json.Unmarshal([]byte(state), &st); err != nil {
					t.Fatalf("state %s: %v", state, err)
				}
				for _, e := range st.Entities {
					if e.Name == "app-registration-events/Subscriptions/appreg" {
						return e.Active > 0
					}
				}
				t.Fatalf("no app-registration-events/Subscriptions/appreg in %s", state)
				return false
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			prefix := "/_emu/" + tt.service + "/"
			if o := tt.call(); !o.ok {
				t.Fatalf("%s before any control: %+v", tt.op, o)
			}

			// A fault for one call, in the service's own error shape.
			s.control(t, "POST", prefix+"faults", `{"operation":"`+tt.op+`","status":503,"count":1}`).must(t, http.StatusNoContent)
			if got := s.control(t, "GET", prefix+"faults", "").must(t, http.StatusOK).body; !strings.Contains(got, `"operation":"`+tt.op+`","status":503`) {
				t.Errorf("armed faults = %s", got)
			}
			if o := tt.call(); o.ok || o.code != tt.faultCode {
				t.Errorf("faulted %s = %+v, want %s", tt.op, o, tt.faultCode)
			}
			if o := tt.call(); !o.ok {
				t.Errorf("after the fault ran out: %+v", o)
			}

			// A throttle, with the wait the service asks for.
			s.control(t, "POST", prefix+"throttle", `{"operation":"`+tt.op+`","retryAfterSeconds":2,"count":1}`).must(t, http.StatusNoContent)
			if o := tt.call(); o.ok || o.code != tt.throttleCode || o.retryAfter != "2" {
				t.Errorf("throttled %s = %+v, want %s and a wait of 2 s", tt.op, o, tt.throttleCode)
			}
			if o := tt.call(); !o.ok {
				t.Errorf("after the throttle ran out: %+v", o)
			}

			// A standing latency holds until removed.
			const latency = 300 * time.Millisecond
			s.control(t, "PUT", prefix+"latency", fmt.Sprintf(`{"operation":%q,"latencyMs":%d}`, tt.op, latency.Milliseconds())).must(t, http.StatusNoContent)
			if got := s.control(t, "GET", prefix+"latency", "").must(t, http.StatusOK).body; got != fmt.Sprintf(`{"latency":[{"operation":%q,"latencyMs":%d}]}`, tt.op, latency.Milliseconds()) {
				t.Errorf("latency = %s", got)
			}
			for range 2 {
				start := time.Now()
				if o := tt.call(); !o.ok || time.Since(start) < latency {
					t.Errorf("slowed %s = %+v after %v", tt.op, o, time.Since(start))
				}
			}
			s.control(t, "DELETE", prefix+"latency", "").must(t, http.StatusNoContent)

			// Statistics count every call of the operation, and the two that faults answered.
			var st emu.Stats
			s.control(t, "GET", prefix+"stats", "").must(t, http.StatusOK).decode(t, &st)
			if st.Operations[tt.op] != 7 || st.Faults != 2 {
				t.Errorf("stats = %+v, want 7 calls of %s and 2 faults", st, tt.op)
			}

			// The state shows what the calls created.
			if state := s.control(t, "GET", prefix+"state", "").must(t, http.StatusOK).body; !tt.created(state) {
				t.Errorf("state does not show the calls' work: %s", state)
			}

			// A control error has one shape everywhere.
			var ce emu.ControlError
			s.control(t, "POST", prefix+"faults", `{"operation":"no-such-operation","status":500}`).must(t, http.StatusBadRequest).decode(t, &ce)
			if ce.Error.Code != "BadRequest" || !strings.Contains(ce.Error.Message, "unknown operation") {
				t.Errorf("control error = %+v", ce)
			}

			// Reset clears the controls and the data, and the service still serves.
			s.control(t, "POST", prefix+"faults", `{"status":500}`).must(t, http.StatusNoContent)
			s.control(t, "PUT", prefix+"latency", `{"operation":"*","latencyMs":5000}`).must(t, http.StatusNoContent)
			s.control(t, "POST", prefix+"reset", "").must(t, http.StatusNoContent)
			st = emu.Stats{}
			s.control(t, "GET", prefix+"stats", "").must(t, http.StatusOK).decode(t, &st)
			if len(st.Operations) != 0 || st.Faults != 0 {
				t.Errorf("stats after reset = %+v", st)
			}
			for control, want := range map[string]string{"faults": `{"faults":[]}`, "latency": `{"latency":[]}`} {
				if got := s.control(t, "GET", prefix+control, "").must(t, http.StatusOK).body; got != want {
					t.Errorf("%s after reset = %s", control, got)
				}
			}
			if state := s.control(t, "GET", prefix+"state", "").must(t, http.StatusOK).body; tt.created(state) {
				t.Errorf("state after reset still shows the calls' work: %s", state)
			}
			start := time.Now()
			if o := tt.call(); !o.ok || time.Since(start) > 3*time.Second {
				t.Errorf("%s after reset = %+v in %v", tt.op, o, time.Since(start))
			}
		})
	}
}

// controlReply is the answer of one control request.
type controlReply struct {
	status int
	body   string
}

func (r controlReply) must(tb testing.TB, status int) controlReply {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func (r controlReply) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		tb.Fatalf("%s: %v", r.body, err)
	}
}

// control calls a control over HTTPS on the shared origin, as a test in another process would.
func (s *Server) control(tb testing.TB, method, path, body string) controlReply {
	tb.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(res.Body); err != nil {
		tb.Fatal(err)
	}
	return controlReply{res.StatusCode, b.String()}
}
