package servicebusemu

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/emulator/internal/token"
)

const (
	rbacTenant = "11111111-2222-3333-4444-555555555555"
	namespace  = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns"
	sender     = "aaaaaaaa-0000-4000-8000-000000000001"
	receiver   = "aaaaaaaa-0000-4000-8000-000000000002"
	stranger   = "aaaaaaaa-0000-4000-8000-000000000003"
)

// roles grants each principal one data action on the namespace.
type roles map[string]string

func (r roles) Authorized(principalID, scope, action string, _ time.Time) bool {
	return r[principalID] == action && strings.HasPrefix(scope, namespace+"/")
}

// entraCredential signs Service Bus tokens for a principal, standing in for Entra.
type entraCredential struct {
	issuer   *token.Issuer
	oid      string
	audience string
}

func (c entraCredential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	aud := c.audience
	if aud == "" {
		aud = strings.TrimSuffix(opts.Scopes[0], "/.default")
	}
	raw, err := c.issuer.Sign(token.Claims{Issuer: "https://sts.windows.net/" + rbacTenant + "/", Audience: aud, TenantID: rbacTenant, ObjectID: c.oid, Subject: c.oid})
	return azcore.AccessToken{Token: raw, ExpiresOn: time.Now().Add(time.Hour)}, err
}

// rbacServer is an emulator that verifies Entra tokens and asks roles.
func rbacServer(t *testing.T) (*Server, *token.Issuer) {
	t.Helper()
	issuer, err := token.NewIssuer(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := (&Config{}).AddQueue("q", EntityProperties{}).AddQueue("sq", EntityProperties{RequiresSession: true})
	s := startServer(t, &Options{Config: cfg, Issuer: issuer, TenantID: rbacTenant, ResourceID: namespace,
		Authorizer: roles{sender: actionSend, receiver: actionReceive}})
	return s, issuer
}

// entraClient is azservicebus signed in with an Entra credential. The SDK speaks TLS to a
// namespace, so the test hands it a plain TCP connection to the emulator instead, as a
// WebSocket dialer would.
func entraClient(t *testing.T, s *Server, cred azcore.TokenCredential) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClient("azemu.servicebus.windows.net", cred, &azservicebus.ClientOptions{
		NewWebSocketConn: func(ctx context.Context, _ azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", s.Addr())
		},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestEntraTokensAndDataRoles(t *testing.T) {
	s, issuer := rbacServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	send := func(oid, audience string) error {
		sdr, err := entraClient(t, s, entraCredential{issuer: issuer, oid: oid, audience: audience}).NewSender("q", nil)
		if err != nil {
			return err
		}
		defer sdr.Close(ctx)
		return sdr.SendMessage(ctx, &azservicebus.Message{Body: []byte("x")}, nil)
	}
	receive := func(oid string) error {
		r, err := entraClient(t, s, entraCredential{issuer: issuer, oid: oid}).NewReceiverForQueue("q", nil)
		if err != nil {
			return err
		}
		defer r.Close(ctx)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = r.ReceiveMessages(rctx, 1, nil)
		return err
	}
	tests := []struct {
		name string
		do   func() error
		want azservicebus.Code
		text string
	}{
		{"SenderSends", func() error { return send(sender, "") }, "", ""},
		{"ReceiverReceives", func() error { return receive(receiver) }, "", ""},
		{"ReceiverCannotSend", func() error { return send(receiver, "") }, azservicebus.CodeUnauthorizedAccess, "'Send' claim(s) are required to perform this operation. Resource: 'sb://azemu.servicebus.windows.net/q'"},
		{"SenderCannotReceive", func() error { return receive(sender) }, azservicebus.CodeUnauthorizedAccess, "'Listen' claim(s) are required"},
		{"StrangerCannotSend", func() error { return send(stranger, "") }, azservicebus.CodeUnauthorizedAccess, "'Send' claim(s)"},
		{"TokenForAnotherAudience", func() error { return send(sender, "https://vault.azure.net") }, azservicebus.CodeUnauthorizedAccess, "InvalidAudience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if sbCode(err) != tt.want || (tt.want == "" && err != nil) {
				t.Fatalf("err = %v (code %q), want code %q", err, sbCode(err), tt.want)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v, want it to say %q", err, tt.text)
			}
		})
	}
}

func TestIDLengthLimits(t *testing.T) {
	s := startServer(t, &Options{Config: (&Config{}).AddQueue("q", EntityProperties{}).AddQueue("sq", EntityProperties{RequiresSession: true})})
	c := newClient(t, s.ConnectionString())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name      string
		queue     string
		messageID string
		sessionID *string
		refused   bool
	}{
		{"MessageId128", "q", strings.Repeat("m", 128), nil, false},
		{"MessageId129", "q", strings.Repeat("m", 129), nil, true},
		{"MessageId128Multibyte", "q", strings.Repeat("é", 128), nil, false},
		{"SessionId128", "sq", "m", ptrTo(strings.Repeat("s", 128)), false},
		{"SessionId129", "sq", "m", ptrTo(strings.Repeat("s", 129)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sdr, err := c.NewSender(tt.queue, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sdr.Close(ctx)
			err = sdr.SendMessage(ctx, &azservicebus.Message{MessageID: &tt.messageID, SessionID: tt.sessionID, Body: []byte("x")}, nil)
			if (err != nil) != tt.refused {
				t.Fatalf("err = %v, refused want %v", err, tt.refused)
			}
			if tt.refused && !strings.Contains(err.Error(), "the maximum allowed is 128") {
				t.Errorf("err = %v", err)
			}
		})
	}
}
