package graph

import (
	"context"
	"log/slog"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/applicationswithuniquename"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"appreg/internal/registrar"
)

// managedFilter selects the apps appreg created. tags/any is one of the filters Graph serves
// without ConsistencyLevel: eventual, so listing needs no advanced-query headers.
const managedFilter = "tags/any(t:t eq '" + registrar.TagManaged + "')"

// odataString escapes s for an OData string literal in a key segment by doubling each quote.
func odataString(s string) string { return strings.ReplaceAll(s, "'", "''") }

// createIfMissing turns a keyed PATCH into an upsert.
func createIfMissing() *abstractions.RequestHeaders {
	h := abstractions.NewRequestHeaders()
	h.Add("Prefer", "create-if-missing")
	return h
}

// FindApplication reads the app with this uniqueName.
func (c *Client) FindApplication(ctx context.Context, uniqueName string) (registrar.App, error) {
	const op = "graph.getApplication"
	start := time.Now()
	app, err := c.getApplication(ctx, uniqueName, absent)
	c.logCall(ctx, op, start, err, slog.String("uniqueName", uniqueName))
	return app, err
}

func (c *Client) getApplication(ctx context.Context, uniqueName string, nf notFound) (registrar.App, error) {
	name := odataString(uniqueName)
	res, err := c.sdk.ApplicationsWithUniqueName(&name).Get(ctx, &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderGetRequestConfiguration{
		QueryParameters: &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderGetQueryParameters{Select: appSelect},
	})
	if err != nil {
		return registrar.App{}, translate("graph.getApplication", err, nf)
	}
	if res == nil {
		return registrar.App{}, emptyResponse("graph.getApplication")
	}
	return toApp(res), nil
}

// CreateApplication creates the app with POST /applications, uniqueName in the body. Unlike the
// upsert it never updates: a taken uniqueName (a live app the serving replica did not show the
// caller, or a soft-deleted one) is Graph's 400, which translate names client_name_reserved.
func (c *Client) CreateApplication(ctx context.Context, spec registrar.AppSpec) (registrar.App, error) {
	const op = "graph.createApplication"
	start := time.Now()
	body := fromSpec(spec)
	body.SetUniqueName(&spec.UniqueName)
	res, err := c.sdk.Applications().Post(ctx, body, nil)
	err = translate(op, err, absent)
	if err == nil && res == nil {
		err = emptyResponse(op)
	}
	c.logCall(ctx, op, start, err, slog.String("uniqueName", spec.UniqueName))
	if err != nil {
		return registrar.App{}, err
	}
	return toApp(res), nil
}

// UpsertApplication creates or updates the app keyed by spec.UniqueName in one request:
// PATCH /applications(uniqueName='…') with Prefer: create-if-missing answers 201 with the new
// app, or 204 with no body when it updated an existing one. The 204 is not followed by a read:
// the caller read the app before and knows what it sent, and a read would spend a request.
func (c *Client) UpsertApplication(ctx context.Context, spec registrar.AppSpec) (registrar.App, bool, error) {
	const op = "graph.upsertApplication"
	start := time.Now()
	name := odataString(spec.UniqueName)
	res, err := c.sdk.ApplicationsWithUniqueName(&name).Patch(ctx, fromSpec(spec), &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderPatchRequestConfiguration{
		Headers: createIfMissing(),
	})
	err = translate(op, err, absent)
	c.logCall(ctx, op, start, err, slog.String("uniqueName", spec.UniqueName), slog.Bool("created", res != nil))
	if err != nil || res == nil {
		return registrar.App{}, false, err
	}
	return toApp(res), true, nil
}

// ListManagedApplications pages through every app tagged appreg:managed. The SDK's PageIterator
// follows @odata.nextLink verbatim, as Graph requires (the link carries an opaque skip token).
func (c *Client) ListManagedApplications(ctx context.Context, fn func(registrar.App) error) error {
	const op = "graph.listApplications"
	start := time.Now()
	filter, top := managedFilter, c.pageSize
	q := &applications.ApplicationsRequestBuilderGetQueryParameters{Filter: &filter, Select: appSelect}
	if top > 0 {
		q.Top = &top
	}
	first, err := c.sdk.Applications().Get(ctx, &applications.ApplicationsRequestBuilderGetRequestConfiguration{QueryParameters: q})
	if err != nil {
		err = translate(op, err, absent)
		c.logCall(ctx, op, start, err)
		return err
	}
	it, err := msgraphcore.NewPageIterator[models.Applicationable](first, c.sdk.GetAdapter(), models.CreateApplicationCollectionResponseFromDiscriminatorValue)
	if err != nil {
		return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "page iterator: " + err.Error(), Err: err}
	}
	var (
		n     int
		fnErr error
	)
	err = it.Iterate(ctx, func(a models.Applicationable) bool {
		if a == nil {
			return true
		}
		n++
		fnErr = fn(toApp(a))
		return fnErr == nil
	})
	err = translate(op, err, absent)
	c.logCall(ctx, op, start, err, slog.Int("apps", n))
	if err != nil {
		return err
	}
	return fnErr
}

func emptyResponse(op string) error {
	return &registrar.Error{Code: registrar.CodeInternal, Op: op, Message: "Graph answered success with no body"}
}

// Probe reads one managed app: the cheapest request that proves the identity can reach Graph
// and holds an application read permission. For the preflight check.
func (c *Client) Probe(ctx context.Context) error {
	const op = "graph.listApplications"
	filter, top := managedFilter, int32(1)
	_, err := c.sdk.Applications().Get(ctx, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id"}, Top: &top},
	})
	return translate(op, err, absent)
}

// DeleteApplication deletes the app: Entra keeps it soft-deleted for 30 days, its uniqueName
// reserved, until it is restored or purged.
func (c *Client) DeleteApplication(ctx context.Context, objectID string) error {
	const op = "graph.deleteApplication"
	start := time.Now()
	err := translate(op, c.sdk.Applications().ByApplicationId(objectID).Delete(ctx, nil), absent)
	c.logCall(ctx, op, start, err, slog.String("appObjectId", objectID))
	return err
}

// Purge removes a soft-deleted application or service principal for good:
// DELETE /directory/deletedItems/{id}. The object no longer counts against the creator's quota
// and its uniqueName is free again.
func (c *Client) Purge(ctx context.Context, objectID string) error {
	const op = "graph.purgeDeletedItem"
	start := time.Now()
	err := translate(op, c.sdk.Directory().DeletedItems().ByDirectoryObjectId(objectID).Delete(ctx, nil), absent)
	c.logCall(ctx, op, start, err, slog.String("objectId", objectID))
	return err
}
