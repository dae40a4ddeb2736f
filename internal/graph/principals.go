package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"

	"appreg/internal/registrar"
)

// FindServicePrincipal reads the app's service principal: GET /servicePrincipals(appId='…').
func (c *Client) FindServicePrincipal(ctx context.Context, appID string) (registrar.ServicePrincipal, error) {
	const op = "graph.getServicePrincipal"
	start := time.Now()
	key := odataString(appID)
	res, err := c.sdk.ServicePrincipalsWithAppId(&key).Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{Select: []string{"id", "appId"}},
	})
	err = translate(op, err, absent)
	c.logCall(ctx, op, start, err, slog.String("appId", appID))
	if err != nil {
		return registrar.ServicePrincipal{}, err
	}
	if res == nil {
		return registrar.ServicePrincipal{}, emptyResponse(op)
	}
	return toServicePrincipal(res), nil
}

// UpsertServicePrincipal makes sure the app has a service principal in the tenant:
// PATCH /servicePrincipals(appId='…') with Prefer: create-if-missing, then a read when Graph
// answered 204 (it existed). The registrar calls this right after creating or reading the app,
// so a 404 or 400 NoBackingApplicationObject means the app has not replicated yet and is
// reported as CodeReplicating for the caller's bounded retry.
func (c *Client) UpsertServicePrincipal(ctx context.Context, appID string) (registrar.ServicePrincipal, error) {
	const op = "graph.upsertServicePrincipal"
	start := time.Now()
	key := odataString(appID)
	sp := c.sdk.ServicePrincipalsWithAppId(&key)
	// The body names nothing: the appId in the key is all Graph needs to create one, and an
	// update with no properties leaves an existing one as it is.
	res, err := sp.Patch(ctx, models.NewServicePrincipal(), &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderPatchRequestConfiguration{
		Headers: createIfMissing(),
	})
	err = translate(op, err, replicating)
	c.logCall(ctx, op, start, err, slog.String("appId", appID), slog.Bool("created", res != nil))
	switch {
	case registrar.ErrorCode(err) == registrar.CodeConflict:
		// 409 Request_MultipleObjectsWithSameKeyValue: the service principal exists (an earlier
		// try created it) but the replica that served the upsert did not show it, so it tried
		// to create another. It exists; read it, as after a 204.
		res = nil
	case err != nil:
		return registrar.ServicePrincipal{}, err
	case res != nil:
		return toServicePrincipal(res), nil
	}

	const getOp = "graph.getServicePrincipal"
	start = time.Now()
	res, err = sp.Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{Select: []string{"id", "appId"}},
	})
	err = translate(getOp, err, replicating)
	c.logCall(ctx, getOp, start, err, slog.String("appId", appID))
	if err != nil {
		return registrar.ServicePrincipal{}, err
	}
	if res == nil {
		return registrar.ServicePrincipal{}, emptyResponse(getOp)
	}
	return toServicePrincipal(res), nil
}

// DeleteServicePrincipal deletes a service principal (soft-deleted, like apps).
func (c *Client) DeleteServicePrincipal(ctx context.Context, objectID string) error {
	const op = "graph.deleteServicePrincipal"
	start := time.Now()
	err := translate(op, c.sdk.ServicePrincipals().ByServicePrincipalId(objectID).Delete(ctx, nil), absent)
	c.logCall(ctx, op, start, err, slog.String("servicePrincipalId", objectID))
	return err
}
