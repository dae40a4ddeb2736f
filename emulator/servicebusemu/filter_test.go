package servicebusemu

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	goamqp "github.com/Azure/go-amqp"
)

func TestSQLFilters(t *testing.T) {
	subject, ctype := "rotated", "application/json"
	m := &goamqp.Message{
		Properties: &goamqp.MessageProperties{MessageID: "req-1", Subject: &subject, ContentType: &ctype},
		ApplicationProperties: map[string]any{
			"tier": "gold", "attempt": int64(3), "ratio": 0.5, "urgent": true, "Mixed": "Case", "o'brien": "x",
		},
	}
	tests := []struct {
		expr string
		want bool
	}{
		{"1=1", true},
		{"1=0", false},
		{"sys.Label = 'rotated'", true},
		{"sys.label = 'registered'", false},
		{"sys.MessageId = 'req-1' AND tier = 'gold'", true},
		{"user.tier = 'silver' OR attempt >= 3", true},
		{"attempt > 3", false},
		{"attempt <> 2 AND ratio < 1", true},
		{"attempt != 3", false},
		{"NOT (tier = 'gold')", false},
		{"tier IN ('silver', 'gold')", true},
		{"tier NOT IN ('silver', 'gold')", false},
		{"sys.ContentType LIKE 'application/%'", true},
		{"tier LIKE 'g_ld'", true},
		{"tier NOT LIKE 'g%'", false},
		{"missing IS NULL", true},
		{"tier IS NOT NULL", true},
		{"EXISTS(tier) AND NOT EXISTS(missing)", true},
		{"missing = 'x'", false},
		{"NOT missing = 'x'", false}, // unknown stays unknown
		{"missing = 'x' OR urgent = TRUE", true},
		{"[o'brien] = 'x'", true},
		{"mixed = 'Case'", true},
		{"sys.Label = 'it''s'", false},
		{"attempt = -1", false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := parseSQL(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := (sqlFilter{e}).match(m); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
	for _, bad := range []string{"", "a +", "a = ", "(a = 1", "a = 'x", "a ! b", "EXISTS(1)", "a IN (b)", "a NOT = 1", "a = 1 b", "a LIKE b", "a LIKE 'x' ESCAPE b", "a LIKE 'x' ESCAPE 'xy'"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			if _, err := parseSQL(bad); err == nil {
				t.Fatal("parsed")
			}
		})
	}
}

func TestCorrelationFilter(t *testing.T) {
	subject, group := "rotated", "s1"
	m := &goamqp.Message{
		Properties:            &goamqp.MessageProperties{MessageID: "m", CorrelationID: "c", Subject: &subject, GroupID: &group},
		ApplicationProperties: map[string]any{"n": int32(7), "tier": "gold"},
	}
	tests := []struct {
		name string
		f    CorrelationFilter
		want bool
	}{
		{"empty matches all", CorrelationFilter{}, true},
		{"subject", CorrelationFilter{Subject: "rotated"}, true},
		{"subject and correlation", CorrelationFilter{Subject: "rotated", CorrelationID: "c", MessageID: "m", SessionID: "s1"}, true},
		{"wrong subject", CorrelationFilter{Subject: "registered"}, false},
		{"properties", CorrelationFilter{Properties: map[string]any{"n": 7, "tier": "gold"}}, true},
		{"missing property", CorrelationFilter{Properties: map[string]any{"other": "x"}}, false},
		{"unset field set in filter", CorrelationFilter{ReplyTo: "q"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (correlation{&tt.f}).match(m); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

// TestSubscriptionRules routes messages sent with the SDK through filtered
// subscriptions.
func TestSubscriptionRules(t *testing.T) {
	cfg := &Config{Topics: []Topic{{Name: "events", Subscriptions: []Subscription{
		{Name: "all"},
		{Name: "rotations", Rules: []Rule{{Name: "subject", Correlation: &CorrelationFilter{Subject: "rotated"}}}},
		{Name: "gold", Rules: []Rule{{Name: "sql", SQL: "tier = 'gold' AND attempt >= 2"}, {Name: "vip", SQL: "EXISTS(vip)"}}},
	}}}}
	srv := startServer(t, &Options{Config: cfg})
	ctx := testContext(t)
	c := newClient(t, srv.ConnectionString())
	mustSend(t, ctx, c, "events",
		&azservicebus.Message{Body: []byte("1"), Subject: to.Ptr("rotated")},
		&azservicebus.Message{Body: []byte("2"), Subject: to.Ptr("registered"), ApplicationProperties: map[string]any{"tier": "gold", "attempt": int64(2)}},
		&azservicebus.Message{Body: []byte("3"), ApplicationProperties: map[string]any{"tier": "gold", "attempt": int64(1)}},
		&azservicebus.Message{Body: []byte("4"), ApplicationProperties: map[string]any{"vip": true}},
	)
	for sub, want := range map[string]int{"all": 4, "rotations": 1, "gold": 2} {
		if st := counts(t, srv, "events/Subscriptions/"+sub); st.Active != want {
			t.Errorf("%s: %d messages, want %d", sub, st.Active, want)
		}
	}
	r, err := c.NewReceiverForSubscription("events", "rotations", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if m := receiveN(t, ctx, r, 1)[0]; string(m.Body) != "1" {
		t.Fatalf("rotations got %q", m.Body)
	}
}

// FuzzParseSQL: filter expressions come from configuration, but a typo must
// give an error, never a panic, and whatever parses must evaluate.
func FuzzParseSQL(f *testing.F) {
	for _, seed := range []string{"1=1", "sys.Label = 'x' AND NOT (a IN (1, 'b') OR b LIKE 'c%' ESCAPE '!')", "EXISTS(a) AND a IS NOT NULL", "[x y] <> -1.5"} {
		f.Add(seed)
	}
	m := &goamqp.Message{ApplicationProperties: map[string]any{"a": int64(1), "b": "c"}}
	f.Fuzz(func(t *testing.T, expr string) {
		e, err := parseSQL(expr)
		if err != nil {
			return
		}
		(sqlFilter{e}).match(m)
	})
}
