package servicebusemu

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"appreg/internal/testutil"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/go-cmp/cmp"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    *Config
		wantErr string
	}{
		{
			name: "official emulator schema with cloud defaults",
			json: `{"UserConfig":{"Namespaces":[{"Name":"sbemulatorns",
				"Queues":[{"Name":"app-registrations","Properties":{"RequiresDuplicateDetection":true,
					"DuplicateDetectionHistoryTimeWindow":"PT20S","LockDuration":"PT30S","MaxDeliveryCount":5,
					"DefaultMessageTimeToLive":"P1DT2H","DeadLetteringOnMessageExpiration":true}},
					{"Name":"plain","Properties":{}}],
				"Topics":[{"Name":"events","Properties":{},"Subscriptions":[{"Name":"appreg","Properties":{"LockDuration":"PT1M"},
					"Rules":[{"Name":"all","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"1=1"}}}]}]}]}],
				"Logging":{"Type":"File"}}}`,
			want: &Config{
				Queues: []Queue{
					{Name: "app-registrations", Properties: EntityProperties{LockDuration: 30 * time.Second, MaxDeliveryCount: 5,
						DefaultMessageTimeToLive: 26 * time.Hour, RequiresDuplicateDetection: true,
						DuplicateDetectionHistoryTimeWindow: 20 * time.Second, DeadLetteringOnMessageExpiration: true}},
					{Name: "plain"},
				},
				Topics: []Topic{{Name: "events", Subscriptions: []Subscription{{Name: "appreg", Properties: EntityProperties{LockDuration: time.Minute},
					Rules: []Rule{{Name: "all", SQL: "1=1"}}}}}},
			},
		},
		{
			name: "correlation rule",
			json: `{"UserConfig":{"Namespaces":[{"Topics":[{"Name":"t","Subscriptions":[{"Name":"s","Rules":[
				{"Name":"r","Properties":{"FilterType":"Correlation","CorrelationFilter":{"Label":"rotated","ContentType":"application/json",
					"CorrelationId":"c","MessageId":"m","To":"x","ReplyTo":"y","SessionId":"s1","ReplyToSessionId":"s2","Properties":{"tier":"gold"}}}}]}]}]}]}}`,
			want: &Config{Topics: []Topic{{Name: "t", Subscriptions: []Subscription{{Name: "s", Rules: []Rule{{Name: "r",
				Correlation: &CorrelationFilter{Subject: "rotated", ContentType: "application/json", CorrelationID: "c", MessageID: "m",
					To: "x", ReplyTo: "y", SessionID: "s1", ReplyToSessionID: "s2", Properties: map[string]any{"tier": "gold"}}}}}}}}},
		},
		{name: "rule action", json: `{"UserConfig":{"Namespaces":[{"Topics":[{"Name":"t","Subscriptions":[{"Name":"s","Rules":[{"Name":"r","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"1=1"},"Action":{"SqlExpression":"SET a = 1"}}}]}]}]}]}}`, wantErr: "actions are not emulated"},
		{name: "bad sql", json: `{"UserConfig":{"Namespaces":[{"Topics":[{"Name":"t","Subscriptions":[{"Name":"s","Rules":[{"Name":"r","Properties":{"FilterType":"Sql","SqlFilter":{"SqlExpression":"a + 1 = 2"}}}]}]}]}]}}`, wantErr: "SQL filter"},
		{name: "bad duration", json: `{"UserConfig":{"Namespaces":[{"Queues":[{"Name":"q","Properties":{"LockDuration":"1 minute"}}]}]}}`, wantErr: "LockDuration"},
		{name: "duplicate queue", json: `{"UserConfig":{"Namespaces":[{"Queues":[{"Name":"q"},{"Name":"Q"}]}]}}`, wantErr: "declared twice"},
		{name: "forwarding", json: `{"UserConfig":{"Namespaces":[{"Queues":[{"Name":"q","Properties":{"ForwardTo":"r"}}]}]}}`, wantErr: "forwarding"},
		{name: "lock too long", json: `{"UserConfig":{"Namespaces":[{"Queues":[{"Name":"q","Properties":{"LockDuration":"PT6M"}}]}]}}`, wantErr: "exceeds"},
		{name: "not json", json: `<xml/>`, wantErr: "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(strings.NewReader(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestEntityDefaults(t *testing.T) {
	got := EntityProperties{RequiresDuplicateDetection: true}.withDefaults()
	want := EntityProperties{LockDuration: time.Minute, MaxDeliveryCount: 10, RequiresDuplicateDetection: true,
		DuplicateDetectionHistoryTimeWindow: 10 * time.Minute}
	if got != want {
		t.Fatalf("got %+v", got)
	}
	b := newBroker(DefaultConfig(), time.Now)
	for _, path := range []string{"app-commands", "app-registration-events",
		"app-registration-events/Subscriptions/appreg", "App-Commands/$DeadLetterQueue",
		"app-registration-events/subscriptions/appreg/$deadletterqueue"} {
		if _, err := b.lookup(path); err != nil {
			t.Errorf("DefaultConfig lacks %s", path)
		}
	}
}

func TestConnectionString(t *testing.T) {
	s := startServer(t, &Options{KeyName: "k", Key: "secret"})
	want := "Endpoint=sb://" + s.Addr() + ";SharedAccessKeyName=k;SharedAccessKey=secret;UseDevelopmentEmulator=true"
	if s.ConnectionString() != want {
		t.Fatalf("got %s", s.ConnectionString())
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("addr %s", s.Addr())
	}
	if got := startServer(t, nil).ConnectionString(); !strings.Contains(got, "SharedAccessKeyName=RootManageSharedAccessKey;") {
		t.Fatalf("default key name: %s", got)
	}
}

func TestTraceNeverShowsSecrets(t *testing.T) {
	var trace testutil.Buffer
	s := startServer(t, &Options{Key: "trace-test-key", Trace: &trace, Config: testConfig()})
	ctx := testContext(t)
	mustSend(t, ctx, newClient(t, s.ConnectionString()), testQueue, textMessage("secret-body"))
	out := trace.String()
	for _, want := range []string{"<- ch=0 amqp.Open", "-> ch=0 amqp.Attach", "amqp.Transfer", "payload="} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
	for _, secret := range []string{"trace-test-key", "SharedAccessSignature", "sig=", "secret-body"} {
		if strings.Contains(out, secret) {
			t.Errorf("trace contains %q", secret)
		}
	}
}

func TestHandler(t *testing.T) {
	s := startServer(t, &Options{Config: testConfig()})
	ctx := testContext(t)
	c := newClient(t, s.ConnectionString())
	mustSend(t, ctx, c, testQueue, textMessage("x"))
	r := newReceiver(t, c, testQueue, nil)
	m := receiveN(t, ctx, r, 1)[0]
	const prefix = "/_emu/servicebus/"
	h := httptest.NewServer(s.Handler())
	defer h.Close()
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, h.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := do("GET", prefix+"counts?entity=q"); code != 200 || !strings.Contains(body, `"locked":1`) {
		t.Fatalf("counts: %d %s", code, body)
	}
	if code, _ := do("POST", prefix+"expire-locks?entity=q"); code != 204 {
		t.Fatalf("expire-locks: %d", code)
	}
	if err := r.CompleteMessage(ctx, m, nil); sbCode(err) != azservicebus.CodeLockLost {
		t.Fatalf("complete after expire-locks: %v", err)
	}
	if code, _ := do("POST", prefix+"detach-links?entity=q"); code != 204 {
		t.Fatalf("detach-links: %d", code)
	}
	if code, _ := do("POST", prefix+"drop-connections"); code != 204 {
		t.Fatalf("drop-connections: %d", code)
	}
	code, body := do("GET", prefix+"dead-letters?entity=q")
	var dls []DeadLetter
	if code != 200 || json.Unmarshal([]byte(body), &dls) != nil {
		t.Fatalf("dead-letters: %d %s", code, body)
	}
	if code, _ := do("GET", prefix+"counts?entity=nope"); code != 404 {
		t.Fatalf("unknown entity: %d", code)
	}
}
