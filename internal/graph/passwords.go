package graph

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"appreg/internal/registrar"
)

// AddPassword adds a client secret to the app. The response's secretText goes straight into a
// registrar.SecretValue and nowhere else: it is not logged, not put in an error, and cleared
// from the SDK's model before returning. The registrar only adds passwords to apps it has just
// upserted or read, so a 404 is a lagging replica (CodeReplicating).
func (c *Client) AddPassword(ctx context.Context, appObjectID string, spec registrar.PasswordSpec) (registrar.NewPassword, error) {
	const op = "graph.addPassword"
	start := time.Now()
	cred := models.NewPasswordCredential()
	if spec.DisplayName != "" {
		cred.SetDisplayName(&spec.DisplayName)
	}
	if !spec.Start.IsZero() {
		t := spec.Start.UTC()
		cred.SetStartDateTime(&t)
	}
	if !spec.End.IsZero() {
		t := spec.End.UTC()
		cred.SetEndDateTime(&t)
	}
	body := applications.NewItemAddPasswordPostRequestBody()
	body.SetPasswordCredential(cred)

	res, err := c.sdk.Applications().ByApplicationId(appObjectID).AddPassword().Post(ctx, body, nil)
	err = translate(op, err, replicating)
	if err == nil && res == nil {
		err = emptyResponse(op)
	}
	var np registrar.NewPassword
	if err == nil {
		np.Password = toPassword(res)
		if text := res.GetSecretText(); text != nil && *text != "" {
			np.Secret = registrar.NewSecretValue(*text)
		}
		res.SetSecretText(nil)
		if np.Secret.IsZero() || np.KeyID == "" {
			// A credential we cannot hand over or name would be an orphan; the sweep removes
			// it (by keyId, if Graph sent one) once it is older than ORPHAN_AFTER.
			err = &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "Graph answered 200 without secretText or keyId"}
		}
	}
	c.logCall(ctx, op, start, err, slog.String("appObjectId", appObjectID), slog.String("keyId", np.KeyID))
	if err != nil {
		return registrar.NewPassword{}, err
	}
	return np, nil
}

// RemovePassword removes a client secret. Graph answers a keyId it does not know with 400 (and an
// app it does not know with 404), so such a failure is checked against the app:
//   - the app is not visible: CodeReplicating, since the registrar only removes passwords from
//     apps it has just read;
//   - the app lists the password: the replica that served removePassword has not seen it yet
//     (it was added moments ago, as in compensation): CodeReplicating;
//   - the app does not list it: CodeNotFound, which the registrar treats as already removed. A
//     stale replica can also answer this for a password added moments ago; the orphan sweep is
//     the backstop for that race.
func (c *Client) RemovePassword(ctx context.Context, appObjectID, keyID string) error {
	const op = "graph.removePassword"
	start := time.Now()
	id, perr := uuid.Parse(keyID)
	if perr != nil {
		return &registrar.Error{Code: registrar.CodeInvalid, Op: op, Message: "keyId is not a GUID", Err: perr}
	}
	body := applications.NewItemRemovePasswordPostRequestBody()
	body.SetKeyId(&id)
	sdkErr := c.sdk.Applications().ByApplicationId(appObjectID).RemovePassword().Post(ctx, body, nil)
	err := translate(op, sdkErr, replicating)
	if r, ok := inspect(sdkErr); ok && (r.Status == http.StatusNotFound || r.Status == http.StatusBadRequest) {
		err = c.confirmRemoved(ctx, op, appObjectID, keyID, err)
	}
	c.logCall(ctx, op, start, err, slog.String("appObjectId", appObjectID), slog.String("keyId", keyID))
	return err
}

// confirmRemoved decides what a 400 or 404 from removePassword meant by reading the app.
func (c *Client) confirmRemoved(ctx context.Context, op, appObjectID, keyID string, orig error) error {
	res, err := c.sdk.Applications().ByApplicationId(appObjectID).Get(ctx, &applications.ApplicationItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationItemRequestBuilderGetQueryParameters{Select: []string{"id", "passwordCredentials"}},
	})
	if err != nil {
		if r, ok := inspect(err); ok && r.Status == http.StatusNotFound {
			return r.Error(op, registrar.CodeReplicating, "application not visible yet", err)
		}
		return orig
	}
	if res == nil {
		return orig
	}
	for _, p := range res.GetPasswordCredentials() {
		if p != nil && strings.EqualFold(derefUUID(p.GetKeyId()), keyID) {
			return &registrar.Error{Code: registrar.CodeReplicating, Op: op, Message: "password listed on the application but not yet removable", Err: orig}
		}
	}
	return &registrar.Error{Code: registrar.CodeNotFound, Op: op, Message: "no password with keyId " + keyID, Err: orig}
}
