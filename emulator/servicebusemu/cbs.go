package servicebusemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// CBS token types the SDKs send.
const (
	tokenTypeSAS = "servicebus.windows.net:sastoken"
	tokenTypeJWT = "jwt"
)

// putToken answers a $cbs put-token request. SAS tokens are verified against
// the configured key; a bad one gets 401, as from Azure. The status code is
// an AMQP int: the Go SDK rejects any other width.
func (c *conn) putToken(req *goamqp.Message) *goamqp.Message {
	op, _ := req.ApplicationProperties["operation"].(string)
	typ, _ := req.ApplicationProperties["type"].(string)
	name, _ := req.ApplicationProperties["name"].(string)
	if op != "put-token" {
		return statusReply(400, "Unsupported CBS operation "+strconv.Quote(op)+".", "")
	}
	var token string
	switch v := req.Value.(type) {
	case string:
		token = v
	case nil:
		if len(req.Data) == 1 {
			token = string(req.Data[0])
		}
	}
	var cl claim
	audience, err := url.Parse(name)
	if err != nil || name == "" {
		return statusReply(400, "The CBS request has no valid 'name' (audience).", "")
	}
	switch typ {
	case tokenTypeSAS:
		if msg := c.srv.verifySAS(token); msg != "" {
			return statusReply(401, msg, "com.microsoft:unauthorized-access")
		}
	case tokenTypeJWT:
		// An Entra token proves who the caller is; what it may do is RBAC's
		// decision, made when a link is attached or a request is made.
		principal, msg := c.srv.verifyJWT(token)
		if msg != "" {
			return statusReply(401, msg, "com.microsoft:unauthorized-access")
		}
		cl = claim{principal: principal, jwt: true}
	default:
		return statusReply(400, "Unsupported token type "+strconv.Quote(typ)+".", "")
	}
	path := strings.Trim(audience.Path, "/")
	entityPath := path
	if isManagement(entityPath) {
		entityPath = entityPath[:len(entityPath)-len("/$management")]
	}
	if entityPath != "" {
		// Like Azure, refuse a token for an entity that does not exist; the
		// SDKs report this 404 as "not found".
		if _, err := c.srv.broker.lookup(entityPath); err != nil {
			return statusReply(404, fmt.Sprintf("The messaging entity '%s' could not be found.", entityPath), string(amqp.ErrNotFound))
		}
	}
	c.claims[strings.ToLower(path)] = cl
	return statusReply(202, "Accepted", "")
}

// verifySAS checks a "SharedAccessSignature sr=..&sig=..&se=..&skn=.." token
// and returns why it is refused, or "".
func (s *Server) verifySAS(token string) string {
	rest, ok := strings.CutPrefix(token, "SharedAccessSignature ")
	if !ok {
		return "InvalidSignature: The token is not a shared access signature."
	}
	fields := map[string]string{}
	for _, kv := range strings.Split(rest, "&") {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	sr, sig, se, skn := fields["sr"], fields["sig"], fields["se"], fields["skn"]
	if sr == "" || sig == "" || se == "" || skn == "" {
		return "InvalidSignature: The token is missing sr, sig, se or skn."
	}
	if skn != s.keyName {
		return "InvalidSignature: The token has an invalid signature."
	}
	expiry, err := strconv.ParseInt(se, 10, 64)
	if err != nil {
		return "InvalidSignature: The token has an invalid expiry."
	}
	// Token expiry follows the wall clock, not Options.Now: tests that move
	// the emulator's clock forward must not invalidate the SDK's tokens.
	if expiry < time.Now().Unix() {
		return "ExpiredToken: The token is expired."
	}
	got, err := url.QueryUnescape(sig)
	if err != nil {
		return "InvalidSignature: The token has an invalid signature."
	}
	mac := hmac.New(sha256.New, []byte(s.key))
	mac.Write([]byte(sr + "\n" + se))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(got), []byte(want)) {
		return "InvalidSignature: The token has an invalid signature."
	}
	return ""
}

// authorized returns the claim of a CBS token that covers path: a token for
// the namespace covers everything, one for an entity covers its sub-paths.
func (c *conn) authorized(path string) (claim, bool) {
	p := strings.ToLower(strings.Trim(path, "/"))
	for covered, cl := range c.claims {
		if covered == "" || p == covered || strings.HasPrefix(p, covered+"/") {
			return cl, true
		}
	}
	return claim{}, false
}

// statusReply builds a $cbs reply. status-code is an AMQP int: the Go SDK
// rejects any other width.
func statusReply(code int32, description, condition string) *goamqp.Message {
	m := &goamqp.Message{ApplicationProperties: map[string]any{
		"status-code":        code,
		"status-description": description,
	}}
	if condition != "" {
		m.ApplicationProperties["error-condition"] = goamqp.Symbol(condition)
	}
	return m
}
