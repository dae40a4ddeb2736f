package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"appreg/emulator/graphemu"
	"appreg/internal/registrar"
)

func TestRegisterThroughTheHost(t *testing.T) {
	s := newStack(t, nil)
	code, ev := s.enqueueWait(`{"requestId":"e2e-1","clientName":"lab-results-sync","displayName":"Lab Results Sync","secret":{"lifetimeDays":90}}`, time.Minute)
	if code != 0 || ev.Type != registrar.EventRegistered || ev.AppID == "" || ev.SecretURI == "" {
		t.Fatalf("exit %d, event %+v", code, ev)
	}
	if ids := s.passwords("appreg-lab-results-sync"); len(ids) != 1 || ids[0] != ev.KeyID {
		t.Errorf("passwords %v, event keyId %s", ids, ev.KeyID)
	}
	s.secretAuthenticates("lab-results-sync")
	// The handler runs on one processor unless the app setting GOMAXPROCS says otherwise, and says so.
	if !strings.Contains(s.hostOut.String(), `gomaxprocs\":1,`) && !strings.Contains(s.hostOut.String(), `gomaxprocs\":1}`) {
		t.Errorf("the handler did not log gomaxprocs 1 at start:\n%s", tail(s.hostOut.String(), 20))
	}
}

func TestBadRequestIsRejectedNotRetried(t *testing.T) {
	s := newStack(t, nil)
	// The CLI validates before sending; a request from another tool is judged by the handler.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code, _, errOut := s.appreg(ctx, "enqueue", "--client-name", "Not_Valid"); code != 2 || !strings.Contains(errOut, "invalid_client_name") {
		t.Fatalf("CLI let an invalid request through: exit %d %s", code, errOut)
	}
	sendRaw(t, s, "bad-1", `{"requestId":"bad-1","clientName":"Not_Valid","secret":{"lifetimeDays":9999}}`)
	ev := waitEvent(t, s, "bad-1")
	if ev.Type != registrar.EventRejected || len(ev.Reasons) != 2 {
		t.Fatalf("event %+v", ev)
	}
	s.waitFor("the message to be settled", 10*time.Second, func() bool {
		st, _ := s.emu.ServiceBus.Counts("app-commands")
		return st.Active == 0 && st.Locked == 0
	})
	if n := strings.Count(s.hostOut.String(), "messageId=bad-1"); n == 0 {
		t.Errorf("no invocation logged for bad-1")
	}
	if strings.Contains(s.hostOut.String(), "deliveryCount=2") {
		t.Errorf("a rejected request was delivered twice")
	}
}

func TestPoisonRequestDeadLettersThenResubmits(t *testing.T) {
	s := newStack(t, nil)
	if err := s.emu.Graph.InjectFault(graphemu.Fault{Operation: graphemu.OpCreateApplication, Status: http.StatusInternalServerError}); err != nil {
		t.Fatal(err)
	}
	code, ev := s.enqueueWait(`{"requestId":"poison-1","clientName":"always-fails"}`, 90*time.Second)
	if code != 4 || ev.Type != registrar.EventFailed {
		t.Fatalf("exit %d, event %+v; want the failed event of the tenth attempt", code, ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dl []struct {
		MessageID     string `json:"messageId"`
		DeliveryCount int    `json:"deliveryCount"`
		Reason        string `json:"deadLetterReason"`
	}
	s.waitFor("the dead-lettered request", 20*time.Second, func() bool {
		_, out, _ := s.appreg(ctx, "dlq", "list", "--json")
		dl = nil
		_ = json.Unmarshal([]byte(out), &dl)
		return len(dl) == 1
	})
	if dl[0].MessageID != "poison-1" || dl[0].Reason != "MaxDeliveryCountExceeded" {
		t.Fatalf("dead letter = %+v", dl[0])
	}
	if n := strings.Count(s.hostOut.String(), "messageId=poison-1"); n < 10 {
		t.Errorf("%d invocations logged, want 10", n)
	}

	s.emu.Graph.ClearFaults()
	if code, out, errOut := s.appreg(ctx, "dlq", "resubmit", "--all"); code != 0 {
		t.Fatalf("dlq resubmit: exit %d %s %s", code, out, errOut)
	}
	ev = waitEventType(t, s, "poison-1", registrar.EventRegistered)
	if ev.AppID == "" {
		t.Fatalf("event %+v", ev)
	}
	s.secretAuthenticates("always-fails")
	if code, out, _ := s.appreg(ctx, "dlq", "list", "--json"); code != 0 || strings.Contains(out, "poison-1") {
		t.Errorf("the resubmitted message is still dead-lettered: %s", out)
	}
}

func TestTimerRotatesAndRetires(t *testing.T) {
	s := newStack(t, map[string]string{
		"ROTATION_SCHEDULE": "*/2 * * * * *",
		// Longer than a rotation takes to verify its new secret against flapping replicas
		// (N sign-ins in a row, several seconds), so the old password is still there when
		// "rotated" arrives.
		"RETIRE_AFTER": "20s",
	})
	_, reg := s.enqueueWait(`{"requestId":"rot-1","clientName":"rotate-me","secret":{"lifetimeDays":1}}`, time.Minute)
	_, keep := s.enqueueWait(`{"requestId":"rot-2","clientName":"not-due","secret":{"lifetimeDays":1}}`, time.Minute)
	if reg.Type != registrar.EventRegistered || keep.Type != registrar.EventRegistered {
		t.Fatalf("registrations: %+v %+v", reg, keep)
	}
	// Time passes for rotate-me: its secret now expires in 30 s out of a 3-minute life, inside
	// the rotation window (a third of the lifetime). Only Key Vault's dates move.
	now := time.Now()
	_, err := s.vaultClient().UpdateSecretProperties(context.Background(), "rotate-me-client-secret", "", azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{NotBefore: to.Ptr(now.Add(-150 * time.Second)), Expires: to.Ptr(now.Add(30 * time.Second))},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rotated := waitEventType(t, s, "rotate:"+reg.AppID+":"+reg.KeyID, registrar.EventRotated)
	if rotated.KeyID == reg.KeyID {
		t.Fatalf("rotated event %+v", rotated)
	}
	if ids := s.passwords("appreg-rotate-me"); len(ids) != 2 {
		t.Fatalf("passwords right after rotation: %v, want old and new", ids)
	}
	s.secretAuthenticates("rotate-me")
	// RETIRE_AFTER later, a timer run retires the old password.
	s.waitFor("the old password to be retired", 60*time.Second, func() bool {
		ids := s.passwords("appreg-rotate-me")
		return len(ids) == 1 && ids[0] == rotated.KeyID
	})
	if ids := s.passwords("appreg-not-due"); len(ids) != 1 || ids[0] != keep.KeyID {
		t.Errorf("a secret that was not due changed: %v", ids)
	}

	// A compromised secret: the old password goes at once, without waiting RETIRE_AFTER.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	code, out, errOut := s.appreg(ctx, "rotate", "not-due", "--revoke-old", "--wait", "--json")
	if code != 0 {
		t.Fatalf("appreg rotate --revoke-old: exit %d %s %s", code, out, errOut)
	}
	ev, ok := outcome(out)
	if !ok || ev.Type != registrar.EventRotated {
		t.Fatalf("rotate printed %s", out)
	}
	if ids := s.passwords("appreg-not-due"); len(ids) != 1 || ids[0] != ev.KeyID || slices.Contains(ids, keep.KeyID) {
		t.Errorf("after --revoke-old: %v, want only %s", ids, ev.KeyID)
	}
	s.secretAuthenticates("not-due")
}

var readyPID = regexp.MustCompile(`handler ready" pid=(\d+)`)

func TestHandlerKilledMidFlight(t *testing.T) {
	s := newStack(t, nil)
	// Hold addPassword long enough to kill the handler while the invocation is in flight.
	if err := s.emu.Graph.InjectFault(graphemu.Fault{Operation: graphemu.OpAddPassword, Latency: 4 * time.Second, Count: 1}); err != nil {
		t.Fatal(err)
	}
	sendRaw(t, s, "kill-1", `{"requestId":"kill-1","clientName":"survivor"}`)
	s.waitFor("the invocation to reach addPassword", 30*time.Second, func() bool {
		return s.emu.Graph.Stats().Operations[graphemu.OpAddPassword] > 0
	})
	m := readyPID.FindAllStringSubmatch(s.hostOut.String(), -1)
	if len(m) == 0 {
		t.Fatal("no handler pid in funchost's log")
	}
	pid, _ := strconv.Atoi(m[len(m)-1][1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := waitEventType(t, s, "kill-1", registrar.EventRegistered)
	s.waitFor("the handler to be restarted", 20*time.Second, func() bool {
		return len(readyPID.FindAllStringSubmatch(s.hostOut.String(), -1)) >= 2
	})
	// The end state is still exactly one credential held by Key Vault; the killed attempt's
	// password, if Graph made it, is an orphan the sweep will remove.
	s.secretAuthenticates("survivor")
	live := s.passwords("appreg-survivor")
	if !slices.Contains(live, ev.KeyID) || len(live) > 2 {
		t.Errorf("passwords %v, registered keyId %s", live, ev.KeyID)
	}
	_ = os.Getpid
}

// TestCompromisedRotationRevokesBeforeWaitReturns covers D1 across processes: `appreg rotate
// --compromised --wait` exited 0 while the leaked password still signed in, and with
// removePassword failing, nothing removed it for RETIRE_AFTER.
func TestCompromisedRotationRevokesBeforeWaitReturns(t *testing.T) {
	s := newStack(t, nil)
	if code, ev := s.enqueueWait(`{"requestId":"leak-1","clientName":"leaky"}`, time.Minute); code != 0 || ev.Type != registrar.EventRegistered {
		t.Fatalf("registration: exit %d %+v", code, ev)
	}
	s.emu.Graph.Replicate()
	appID, leaked := s.secretValue("leaky", "")
	if err := s.signIn(appID, leaked); err != nil {
		t.Fatalf("test premise: the secret should sign in: %v", err)
	}
	// Three transient failures of the removal: retried, never announced as done before it is.
	if err := s.emu.Graph.InjectFault(graphemu.Fault{Operation: graphemu.OpRemovePassword, Status: http.StatusInternalServerError, Count: 3}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, out, errOut := s.appreg(ctx, "rotate", "leaky", "--compromised", "--wait", "--json")
	if code != 0 {
		t.Fatalf("appreg rotate --compromised: exit %d %s %s", code, out, errOut)
	}
	ev, ok := outcome(out)
	if !ok || ev.Type != registrar.EventRotated || len(ev.RevokedKeyIDs) != 1 {
		t.Fatalf("rotate printed %s", out)
	}
	// Graph has removed it; Entra's replicas stop accepting it within their lag, as in Azure.
	s.waitFor("the leaked secret to stop signing in after rotate --compromised --wait returned 0", 10*time.Second, func() bool {
		for range 3 { // refused by three sign-ins in a row, whichever replicas serve them
			if s.signIn(appID, leaked) == nil {
				return false
			}
		}
		return true
	})
	s.secretAuthenticates("leaky")

	// A removal that keeps failing: the CLI exits non-zero and names the password that still works.
	s.emu.Graph.Replicate()
	_, leaked = s.secretValue("leaky", "")
	if err := s.emu.Graph.InjectFault(graphemu.Fault{Operation: graphemu.OpRemovePassword, Status: http.StatusForbidden}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = s.appreg(ctx, "rotate", "leaky", "--compromised", "--wait")
	if code != 4 {
		t.Fatalf("exit %d, want 4 (failed): %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "still sign in") || !strings.Contains(out, ev.KeyID) {
		t.Errorf("the CLI did not say which keyId still works (%s):\n%s", ev.KeyID, out)
	}
	if err := s.signIn(appID, leaked); err != nil {
		t.Errorf("test premise: the unremovable password should still sign in: %v", err)
	}
}
