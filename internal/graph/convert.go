package graph

import (
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"appreg/internal/registrar"
)

// appSelect is every application property toApp reads. Asking for them by name keeps responses
// small and states the adapter's dependency on Graph's schema in one place.
var appSelect = []string{
	"id", "appId", "uniqueName", "displayName", "signInAudience", "notes", "tags", "web", "passwordCredentials",
	"createdDateTime",
}

// The SDK's models are pointer-heavy interfaces; these helpers are the only place that knows.

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefTime(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}

func derefUUID(p *uuid.UUID) string {
	if p == nil {
		return ""
	}
	return p.String()
}

func toApp(a models.Applicationable) registrar.App {
	app := registrar.App{
		ObjectID:       deref(a.GetId()),
		AppID:          deref(a.GetAppId()),
		UniqueName:     deref(a.GetUniqueName()),
		DisplayName:    deref(a.GetDisplayName()),
		SignInAudience: deref(a.GetSignInAudience()),
		Notes:          deref(a.GetNotes()),
		Tags:           slices.Clone(a.GetTags()),
		Created:        derefTime(a.GetCreatedDateTime()),
	}
	if web := a.GetWeb(); web != nil {
		app.RedirectURIs = slices.Clone(web.GetRedirectUris())
	}
	for _, p := range a.GetPasswordCredentials() {
		if p != nil {
			app.Passwords = append(app.Passwords, toPassword(p))
		}
	}
	return app
}

// toPassword copies a credential's metadata. It never reads secretText: that is addPassword's
// business alone.
func toPassword(p models.PasswordCredentialable) registrar.Password {
	return registrar.Password{
		KeyID:       derefUUID(p.GetKeyId()),
		DisplayName: deref(p.GetDisplayName()),
		Hint:        deref(p.GetHint()),
		Start:       derefTime(p.GetStartDateTime()),
		End:         derefTime(p.GetEndDateTime()),
	}
}

func toServicePrincipal(sp models.ServicePrincipalable) registrar.ServicePrincipal {
	return registrar.ServicePrincipal{ObjectID: deref(sp.GetId()), AppID: deref(sp.GetAppId())}
}

// fromSpec is the PATCH body of an application upsert. Properties the registrar manages are
// always sent, empty or not, so a changed request can clear them; the SDK serialises a non-nil
// empty slice as [] and a nil one not at all.
func fromSpec(spec registrar.AppSpec) models.Applicationable {
	a := models.NewApplication()
	a.SetDisplayName(&spec.DisplayName)
	a.SetSignInAudience(&spec.SignInAudience)
	a.SetNotes(&spec.Notes)
	a.SetTags(nonNil(spec.Tags))
	web := models.NewWebApplication()
	web.SetRedirectUris(nonNil(spec.RedirectURIs))
	a.SetWeb(web)
	return a
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
