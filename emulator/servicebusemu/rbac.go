package servicebusemu

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	goamqp "github.com/Azure/go-amqp"
	"github.com/google/uuid"

	"appreg/emulator/internal/token"
	"appreg/emulator/servicebusemu/internal/amqp"
)

// Authorizer is Azure RBAC as Service Bus consults it for an Entra (jwt) CBS token: whether the
// token's principal holds a data action at an entity's scope. The Resource Manager emulator
// implements it.
type Authorizer interface {
	Authorized(principalID, scope, dataAction string, asOf time.Time) bool
}

// Service Bus's data actions and the claim name each stands for in its refusals.
const (
	actionSend    = "Microsoft.ServiceBus/namespaces/messages/send/action"
	actionReceive = "Microsoft.ServiceBus/namespaces/messages/receive/action"
)

// audience is what an Entra token for Service Bus carries, by URI or by application ID.
var audiences = []string{"https://servicebus.azure.net", "80369ed6-5f11-4dd9-bef3-692475845e77"}

// maxIDLength is Service Bus's limit on MessageId and SessionId, in characters.
const maxIDLength = 128

// claim is what one CBS token established for an audience path: a SAS key holds every right;
// an Entra token holds what its principal's roles give.
type claim struct {
	principal string // the token's oid; "" for SAS
	jwt       bool
}

// verifyJWT checks an Entra token the way Service Bus reports it at put-token; it returns the
// principal and a refusal ("" when accepted).
func (s *Server) verifyJWT(raw string) (string, string) {
	if s.issuer == nil {
		return "", "" // no issuer configured: identity-based access is not checked
	}
	var c token.Claims
	var err error
	for _, aud := range audiences {
		if c, err = s.issuer.Verify(raw, aud); !errors.Is(err, token.ErrAudience) {
			break
		}
	}
	switch {
	case errors.Is(err, token.ErrAudience):
		return "", "InvalidAudience: The token audience is invalid. Expected https://servicebus.azure.net."
	case errors.Is(err, token.ErrExpired):
		return "", "ExpiredToken: The token is expired."
	case err != nil:
		return "", "InvalidSignature: The token has an invalid signature."
	case s.tenantID != "" && !strings.EqualFold(c.TenantID, s.tenantID):
		return "", "InvalidIssuer: Token issuer is invalid."
	}
	return c.ObjectID, ""
}

// entityScope is the ARM id an entity's role assignments are made at: the namespace's id with
// /queues/<q>, /topics/<t> or /topics/<t>/subscriptions/<s>.
func (s *Server) entityScope(e *entity) string {
	name := strings.TrimSuffix(e.name, "/$DeadLetterQueue")
	name = strings.TrimSuffix(name, "/$Transfer")
	switch e.kind {
	case kindQueue:
		return s.resourceID + "/queues/" + name
	case kindTopic:
		return s.resourceID + "/topics/" + name
	}
	topic, sub, _ := strings.Cut(name, "/Subscriptions/")
	return s.resourceID + "/topics/" + topic + "/subscriptions/" + sub
}

// mayAct decides a data action for the claim covering a link: SAS claims (the namespace key)
// and unverified tokens hold every right; an Entra token holds what RBAC gives its principal.
func (c *conn) mayAct(cl claim, e *entity, action string) *amqp.Error {
	if !cl.jwt || c.srv.authz == nil {
		return nil
	}
	if c.srv.authz.Authorized(cl.principal, c.srv.entityScope(e), action, c.srv.now()) {
		return nil
	}
	right := "Listen"
	if action == actionSend {
		right = "Send"
	}
	kind := map[entityKind]string{kindQueue: "Queue", kindTopic: "Topic", kindSubscription: "Subscription"}[e.kind]
	host := c.hostname
	if host == "" {
		host = "localhost"
	}
	now := time.Now().UTC()
	return &amqp.Error{Condition: amqp.ErrUnauthorized, Description: fmt.Sprintf(
		"Unauthorized access. '%s' claim(s) are required to perform this operation. Resource: 'sb://%s/%s'. TrackingId:%s_G0, SystemTracker:%s:%s:%s, Timestamp:%s",
		right, host, strings.ToLower(e.name), strings.ReplaceAll(uuid.NewString(), "-", ""), host, kind, e.name, now.Format("2006-01-02T15:04:05"))}
}

// checkIDs refuses a message whose MessageId or SessionId is longer than Service Bus allows;
// the SDKs do not check (the Go one not at all), the service does.
func checkIDs(msgs []*goamqp.Message) *amqp.Error {
	for _, m := range msgs {
		if m.Properties == nil {
			continue
		}
		id, _ := m.Properties.MessageID.(string)
		session := ""
		if m.Properties.GroupID != nil {
			session = *m.Properties.GroupID
		}
		for _, f := range []struct{ name, v string }{{"MessageId", id}, {"SessionId", session}} {
			if n := utf8.RuneCountInString(f.v); n > maxIDLength {
				return &amqp.Error{Condition: "com.microsoft:argument-out-of-range", Description: fmt.Sprintf(
					"The value supplied for %s is %d characters long; the maximum allowed is %d. Parameter name: %s", f.name, n, maxIDLength, f.name)}
			}
		}
	}
	return nil
}
