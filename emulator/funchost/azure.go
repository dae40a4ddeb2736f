package funchost

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// azureReceivers opens azservicebus receivers, one client per distinct
// connection, as the Service Bus extension shares a client per connection.
type azureReceivers struct {
	log     *slog.Logger
	mu      sync.Mutex
	clients map[string]*azservicebus.Client
}

func newAzureReceivers(log *slog.Logger) *azureReceivers {
	return &azureReceivers{log: log, clients: map[string]*azservicebus.Client{}}
}

func (a *azureReceivers) open(ctx context.Context, fn *Function) (Receiver, error) {
	t := fn.ServiceBus
	client, err := a.client(t.Connection)
	if err != nil {
		return nil, err
	}
	opts := &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock}
	if t.QueueName != "" {
		return client.NewReceiverForQueue(t.QueueName, opts)
	}
	return client.NewReceiverForSubscription(t.TopicName, t.SubscriptionName, opts)
}

// acceptNext accepts the next session with messages. The SDK waits for one up to the
// service's timeout and then answers CodeTimeout, which the session worker takes as "none".
func (a *azureReceivers) acceptNext(ctx context.Context, fn *Function) (SessionReceiver, error) {
	t := fn.ServiceBus
	client, err := a.client(t.Connection)
	if err != nil {
		return nil, err
	}
	opts := &azservicebus.SessionReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock}
	if t.QueueName != "" {
		return client.AcceptNextSessionForQueue(ctx, t.QueueName, opts)
	}
	return client.AcceptNextSessionForSubscription(ctx, t.TopicName, t.SubscriptionName, opts)
}

func (a *azureReceivers) client(c Connection) (*azservicebus.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cl, ok := a.clients[c.key()]; ok {
		return cl, nil
	}
	opts := &azservicebus.ClientOptions{ApplicationID: "funchost"}
	var cl *azservicebus.Client
	if c.connectionString != "" {
		var err error
		cl, err = azservicebus.NewClientFromConnectionString(c.connectionString, opts)
		if err != nil {
			// The SDK's parse errors do not echo the key, but say which setting.
			return nil, fmt.Errorf("connection %s: %w", c.Name, err)
		}
	} else {
		cred, err := credential(c)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", c.Name, err)
		}
		cl, err = azservicebus.NewClient(c.FullyQualifiedNamespace, cred, opts)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", c.Name, err)
		}
	}
	a.clients[c.key()] = cl
	return cl, nil
}

// credential picks the Entra credential for an identity-based connection
// the way the Functions host does from <prefix>__credential, __clientId,
// __tenantId and __clientSecret.
func credential(c Connection) (azcore.TokenCredential, error) {
	switch {
	case c.clientSecret != "":
		return azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.clientSecret, nil)
	case strings.EqualFold(c.Credential, "managedidentity") || c.ClientID != "":
		o := &azidentity.ManagedIdentityCredentialOptions{}
		if c.ClientID != "" {
			o.ID = azidentity.ClientID(c.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(o)
	default:
		return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{TenantID: c.TenantID})
	}
}

func (a *azureReceivers) close(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, cl := range a.clients {
		if err := cl.Close(ctx); err != nil {
			a.log.Warn("closing Service Bus client", "error", err)
		}
		delete(a.clients, k)
	}
}
