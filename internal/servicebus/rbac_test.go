package servicebus

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/emulator/armemu"
	"appreg/emulator/azemu"
	"appreg/internal/azauth"
	"appreg/internal/registrar"
)

// entraClient is azservicebus signed in as a seeded client of the local Azure. The SDK speaks
// TLS to a namespace, so the test hands it a plain connection to the emulator, as a WebSocket
// dialer would.
func entraClient(t *testing.T, emu *azemu.Server, appID, secret string) *azservicebus.Client {
	t.Helper()
	ep := emu.Endpoints()
	cred, err := azauth.NewCredential(azauth.Options{TenantID: ep.TenantID, ClientID: appID, ClientSecret: secret, AuthorityHost: ep.AuthorityHost, Transport: emu.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := azservicebus.NewClient("azemu.servicebus.windows.net", cred, &azservicebus.ClientOptions{
		NewWebSocketConn: func(ctx context.Context, _ azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", emu.ServiceBus.Addr())
		},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// TestMissingSenderRoleIsForbidden: an identity without Azure Service Bus Data Sender meets
// Service Bus's unauthorized-access through the SDK, and the adapter names the role; once it
// holds the role, publishing works.
func TestMissingSenderRoleIsForbidden(t *testing.T) {
	emu, err := azemu.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	appID, _, spID, secret, err := emu.Graph.SeedClient("no-bus-role", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := func() error {
		pub, err := NewPublisher(entraClient(t, emu, appID, secret), "app-registration-events", "app-commands", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close(ctx)
		return pub.Publish(ctx, registrar.Event{Type: registrar.EventRegistered, RequestID: "rbac-1", ClientName: "lab-results-sync"})
	}
	err = publish()
	if registrar.ErrorCode(err) != registrar.CodeForbidden {
		t.Fatalf("Publish = %v, want %s", err, registrar.CodeForbidden)
	}
	for _, want := range []string{"Azure Service Bus Data Sender", "'Send' claim(s) are required", "app-registration-events"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if _, err := emu.ARM.Seed(armemu.Assignment{Scope: emu.Endpoints().ServiceBusID + "/topics/app-registration-events", RoleDefinitionID: armemu.RoleServiceBusDataSender,
		PrincipalID: spID, PrincipalType: "ServicePrincipal"}); err != nil {
		t.Fatal(err)
	}
	if err := publish(); err != nil {
		t.Fatalf("Publish with the role: %v", err)
	}
}

// TestOverlongMessageIDIsInvalid: Service Bus's 128-character limit on MessageId is a refusal
// no resend can change.
func TestOverlongMessageIDIsInvalid(t *testing.T) {
	srv, _ := start(t)
	client, err := azservicebus.NewClientFromConnectionString(srv.ConnectionString(), &azservicebus.ClientOptions{
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer client.Close(ctx)
	s, err := client.NewSender("app-commands", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	id, session := strings.Repeat("x", 129), "lab-results-sync"
	err = translate("servicebus.send", s.SendMessage(ctx, &azservicebus.Message{MessageID: &id, SessionID: &session, Body: []byte("{}")}, nil))
	if registrar.ErrorCode(err) != registrar.CodeInvalid || !strings.Contains(err.Error(), "MessageId") {
		t.Fatalf("send = %v, want %s naming the MessageId", err, registrar.CodeInvalid)
	}
}
