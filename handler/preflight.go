package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/internal/arm"
	"appreg/internal/azerr"
	"appreg/internal/config"
	"appreg/internal/graph"
	"appreg/internal/keyvault"
	"appreg/internal/registrar"
	"appreg/internal/servicebus"
)

// check is one preflight check: a call appreg will make in earnest, made once without side
// effects, and what an operator does when it fails.
type check struct {
	name string
	run  func(ctx context.Context) error
	// fix says what to do about a failure, given its registrar code.
	fix func(err error) string
}

// checkResult is a check's outcome.
type checkResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Fix   string `json:"fix,omitempty"`
}

// preflightChecks lists what the handler's identity must be able to do, in the order it matters.
func preflightChecks(cfg config.Config, cred azcore.TokenCredential, dir *graph.Client, store *keyvault.Store, sb *azservicebus.Client, access *arm.Client) []check {
	who := "the Function App's system-assigned managed identity"
	if cfg.ClientID != "" {
		who = "identity " + cfg.ClientID
	}
	token := func(scope string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, TenantID: cfg.TenantID})
			if err != nil {
				// Keeps the AADSTS code and nothing of Entra's body.
				return azerr.Transport("entra.token", err)
			}
			return nil
		}
	}
	permission := func(grant string) func(error) string {
		return func(err error) string {
			switch registrar.ErrorCode(err) {
			case registrar.CodeForbidden:
				return grant
			case registrar.CodeNotFound:
				return "it does not exist: check the setting, or create it (see the deployment runbook)"
			}
			return "the service did not answer as expected; check the endpoint setting and the network"
		}
	}
	checks := []check{
		{name: "token for Microsoft Graph", run: token(graph.Scope(cfg.GraphBaseURL)), fix: func(error) string {
			return fmt.Sprintf("%s could not get a token: check %s, %s and %s", who, config.EnvTenantID, config.EnvClientID, config.EnvAuthorityHost)
		}},
		{name: "Microsoft Graph: read applications", run: dir.Probe, fix: permission(
			fmt.Sprintf("grant %s the Microsoft Graph application permission Application.ReadWrite.OwnedBy with admin consent, then restart the Function App; a managed identity's token keeps the roles it was issued with, and Azure can serve the cached token for up to 24 hours, so if this check still fails after a restart, wait for the token to expire", who))},
		{name: "Key Vault: list secrets in " + cfg.KeyVaultURL, run: store.Probe, fix: permission(
			fmt.Sprintf("assign %s the role Key Vault Secrets Officer on the vault %s", who, cfg.KeyVaultURL))},
		{name: "Service Bus: send to queue " + cfg.CommandQueue, run: func(ctx context.Context) error { return servicebus.ProbeSend(ctx, sb, cfg.CommandQueue) },
			fix: permission(fmt.Sprintf("assign %s the role Azure Service Bus Data Sender on the queue %s", who, cfg.CommandQueue))},
		{name: "Service Bus: receive from queue " + cfg.CommandQueue, run: func(ctx context.Context) error { return servicebus.ProbeReceive(ctx, sb, cfg.CommandQueue) },
			fix: permission(fmt.Sprintf("assign %s the role Azure Service Bus Data Receiver on the queue %s", who, cfg.CommandQueue))},
		{name: "Service Bus: send to topic " + cfg.EventsTopic, run: func(ctx context.Context) error { return servicebus.ProbeSend(ctx, sb, cfg.EventsTopic) },
			fix: permission(fmt.Sprintf("assign %s the role Azure Service Bus Data Sender on the topic %s", who, cfg.EventsTopic))},
	}
	if len(cfg.FHIRServices) > 0 {
		checks = append(checks, check{name: "token for Azure Resource Manager", run: token(strings.TrimSuffix(cfg.ARMAudience, "/") + "/.default"), fix: func(error) string {
			return fmt.Sprintf("%s could not get a token for %s: check %s", who, cfg.ARMAudience, config.EnvARMAudience)
		}})
	}
	for _, svc := range cfg.FHIRServices {
		checks = append(checks, check{name: "Resource Manager: read role assignments on " + svc.ID, run: func(ctx context.Context) error {
			// Any principal will do: the listing proves read access at the scope, and appreg's
			// delegation (Role Based Access Control Administrator) includes it.
			_, err := access.List(ctx, svc.ID, "00000000-0000-0000-0000-000000000000")
			return err
		}, fix: permission(fmt.Sprintf("assign %s the role Role Based Access Control Administrator on %s, with the condition that limits it to the allowed FHIR roles and ServicePrincipal principals (see the deployment runbook)", who, svc.ID))})
	}
	if cfg.VerifyTimeout > 0 {
		checks = append(checks, check{name: "token for " + config.EnvVerifyScope + " " + cfg.VerifyScope, run: token(cfg.VerifyScope), fix: func(err error) string {
			if strings.Contains(err.Error(), "AADSTS500011") || strings.Contains(err.Error(), "AADSTS70011") {
				return fmt.Sprintf("Entra knows no resource for %s: set it to your FHIR service's https://<workspace>-<fhir>.fhir.azurehealthcareapis.com/.default, or set %s=0s to skip verification", config.EnvVerifyScope, config.EnvVerifyTimeout)
			}
			return fmt.Sprintf("%s could not get a token for %s", who, cfg.VerifyScope)
		}})
	}
	return checks
}

// preflight runs every check, each bounded by timeout, and returns their results.
func preflight(ctx context.Context, checks []check, timeout time.Duration) []checkResult {
	out := make([]checkResult, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.run(cctx)
		cancel()
		r := checkResult{Name: c.name, OK: err == nil}
		if err != nil {
			r.Error, r.Fix = err.Error(), c.fix(err)
		}
		out = append(out, r)
	}
	return out
}

// printPreflight writes one line per check, for a person.
func printPreflight(w io.Writer, results []checkResult) (failed int) {
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(w, "ok    %s\n", r.Name)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL  %s: %s\n      fix: %s\n", r.Name, r.Error, r.Fix)
	}
	return failed
}

// logPreflight logs the results at start-up, where an operator of a Function App sees them.
func logPreflight(log *slog.Logger, results []checkResult) {
	for _, r := range results {
		if r.OK {
			log.Info("preflight check passed", slog.String("check", r.Name))
		} else {
			log.Warn("preflight check failed", slog.String("check", r.Name), slog.String("error", r.Error), slog.String("fix", r.Fix))
		}
	}
}
