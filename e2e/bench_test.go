package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"appreg/emulator/azemu"
	"appreg/emulator/emu"
	"appreg/internal/registrar"
	"appreg/internal/testutil"
)

// BenchmarkHandler measures the shipped handler binary in its own process, as the Functions host
// runs it, against the local Azure in this one: the CPU the handler process spends per command
// (summed over its threads from /proc, so the emulators' work is not in it), and how many
// requests each command makes of Graph, Key Vault and Entra, counted at the emulators.
//
//	go test -run '^$' -bench Handler -benchtime 200x ./e2e
//
// "new" registers a new client, "redelivered" delivers a registration again (a redelivery of an
// unchanged request), "rotation" rotates a registered client's secret on demand. Verification
// is one sign-in ("verify=1"; SECRET_VERIFY_SUCCESSES defaults to 8, one second apart, which is
// wall time, not CPU, and the same sign-in eight times) or off ("verify=off").
func BenchmarkHandler(b *testing.B) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		b.Skip("reads per-thread CPU time from /proc")
	}
	for _, verify := range []string{"off", "1"} {
		settings := map[string]string{"SECRET_VERIFY_TIMEOUT": "0s"}
		if verify == "1" {
			settings = map[string]string{"SECRET_VERIFY_TIMEOUT": "30s", "SECRET_VERIFY_SUCCESSES": "1"}
		}
		h := startHandler(b, settings)
		n := 0
		b.Run("verify="+verify+"/new", func(b *testing.B) {
			h.measure(b, func(i int) (string, []byte) {
				n++
				return "register", []byte(fmt.Sprintf(`{"requestId":"bench-%d","clientName":"bench-%d"}`, n, n))
			})
		})
		b.Run("verify="+verify+"/redelivered", func(b *testing.B) {
			h.measure(b, func(i int) (string, []byte) {
				c := i%n + 1
				return "register", []byte(fmt.Sprintf(`{"requestId":"bench-%d","clientName":"bench-%d"}`, c, c))
			})
		})
		b.Run("verify="+verify+"/rotation", func(b *testing.B) {
			h.measure(b, func(i int) (string, []byte) {
				job, _ := json.Marshal(registrar.RotationJob{ClientName: fmt.Sprintf("bench-%d", i%n+1), Reason: registrar.ReasonOnDemand, RequestedAt: time.Now().UTC()})
				return "rotate", job
			})
		})
	}
}

// handlerProc is the handler binary running against an in-process local Azure.
type handlerProc struct {
	emu  *azemu.Server
	url  string
	pid  int
	http *http.Client
}

func startHandler(b *testing.B, settings map[string]string) *handlerProc {
	b.Helper()
	// The kind profile: replication lag would add waits and retried requests that are Azure's,
	// not the handler's, and make the counts and CPU figures depend on the seed.
	em, err := azemu.NewServer(&azemu.Options{Profile: azemu.Kind, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(em.Close)
	// Hundreds of clients are past the 250 objects a principal may create; at the quota every
	// later registration would fail fast and the figures would be a failure's, not a registration's.
	em.Graph.SetObjectQuota(0)
	dir := b.TempDir()
	if err := em.WriteDir(dir); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ep := em.Endpoints()
	env := map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": port,
		"AZURE_TENANT_ID":              ep.TenantID, "AZURE_AUTHORITY_HOST": ep.AuthorityHost,
		"GRAPH_BASE_URL": ep.GraphBaseURL, "KEY_VAULT_URL": ep.KeyVaultURL,
		"APPREG_CA_FILE": filepath.Join(dir, "ca.pem"), "ServiceBusConnection": ep.ServiceBusConnectionString,
		"COMMAND_QUEUE": "app-commands", "EVENTS_TOPIC": "app-registration-events", "ROTATION_SCHEDULE": "0 0 */6 * * *",
		"IDENTITY_ENDPOINT": ep.ManagedIdentity.Endpoint, "IDENTITY_HEADER": ep.ManagedIdentity.Header,
		"AZURE_CLIENT_ID": ep.ManagedIdentity.ClientID, "CREDENTIAL_EDIT_SPACING": "1ms", "LOG_LEVEL": "warn",
	}
	for k, v := range settings {
		env[k] = v
	}
	cmd := exec.Command(filepath.Join(bin, "dist", "handler"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("handler output:\n%s", tail(out.String(), 40))
		}
	})
	h := &handlerProc{emu: em, url: "http://127.0.0.1:" + port, pid: cmd.Process.Pid, http: &http.Client{Timeout: time.Minute}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := h.http.Get(h.url + "/"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the handler did not answer GET /:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

// cpu is the handler process's CPU time so far: every thread's, from schedstat (nanoseconds).
func (h *handlerProc) cpu(b *testing.B) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", h.pid))
	var total time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just exited
		}
		f := strings.Fields(string(raw))
		if len(f) == 0 {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		total += time.Duration(ns)
	}
	if total == 0 {
		b.Fatal("no CPU time read for the handler")
	}
	return total
}

// measure delivers b.N commands one at a time, as one session does, and reports the CPU per
// command (mean, p50, p99) and the requests per command at each emulator.
func (h *handlerProc) measure(b *testing.B, next func(i int) (kind string, body []byte)) {
	before := map[string]emu.Stats{"graph": h.emu.Graph.Stats(), "keyvault": h.emu.KeyVault.Stats(), "entra": h.emu.Entra.Stats()}
	var cpus []time.Duration
	b.ResetTimer()
	for i := range b.N {
		kind, body := next(i)
		start := h.cpu(b)
		h.invoke(b, kind, body, fmt.Sprintf("m-%d-%d", time.Now().UnixNano(), i))
		cpus = append(cpus, h.cpu(b)-start)
	}
	b.StopTimer()
	slices.Sort(cpus)
	var sum time.Duration
	for _, c := range cpus {
		sum += c
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(sum/time.Duration(len(cpus))), "cpu-ms/op")
	b.ReportMetric(ms(cpus[len(cpus)/2]), "cpu-p50-ms")
	b.ReportMetric(ms(cpus[len(cpus)*99/100]), "cpu-p99-ms")
	after := map[string]emu.Stats{"graph": h.emu.Graph.Stats(), "keyvault": h.emu.KeyVault.Stats(), "entra": h.emu.Entra.Stats()}
	for _, svc := range []string{"graph", "keyvault", "entra"} {
		calls := 0
		for op, n := range after[svc].Operations {
			calls += n - before[svc].Operations[op]
		}
		b.ReportMetric(float64(calls)/float64(b.N), svc+"-reqs/op")
	}
	writes := 0
	for op, n := range after["graph"].Operations {
		if graphWrite(op) {
			writes += n - before["graph"].Operations[op]
		}
	}
	b.ReportMetric(float64(writes)/float64(b.N), "graph-writes/op")
}

// graphWrite reports whether a graphemu operation changes the directory.
func graphWrite(op string) bool {
	for _, w := range []string{"create", "upsert", "update", "add", "remove", "delete", "restore", "patch"} {
		if strings.HasPrefix(strings.ToLower(op), w) {
			return true
		}
	}
	return false
}

// invoke posts what the Functions host posts for one message of the command queue.
func (h *handlerProc) invoke(b *testing.B, kind string, body []byte, messageID string) {
	var req struct{ ClientName string }
	_ = json.Unmarshal(body, &req)
	twice := func(s string) string {
		once, _ := json.Marshal(s)
		return string(once)
	}
	env, _ := json.Marshal(map[string]any{
		"Data": map[string]any{"command": twice(string(body))},
		"Metadata": map[string]any{
			"DeliveryCount": "1", "MessageId": twice(messageID), "ContentType": twice("application/json"),
			"Subject": twice(kind), "SessionId": twice(req.ClientName), "SequenceNumber": "1",
			"EnqueuedTimeUtc": time.Now().UTC().Format("2006-01-02T15:04:05"),
		},
	})
	r, _ := http.NewRequest(http.MethodPost, h.url+"/ClientCommand", bytes.NewReader(env))
	r.Header.Set("Content-Type", "application/json")
	res, err := h.http.Do(r)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var out bytes.Buffer
		_, _ = out.ReadFrom(res.Body)
		b.Fatalf("%s: HTTP %d %s", kind, res.StatusCode, out.String())
	}
	// A command that failed costs less than one that did its work: every outcome is checked, so a
	// refusal cannot pass for a fast registration.
	var out struct {
		ReturnValue struct{ Type string }
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		b.Fatalf("%s: reading the handler's answer: %v", kind, err)
	}
	want := map[string]string{"register": "registered", "rotate": "rotated"}[kind]
	if out.ReturnValue.Type != want {
		b.Fatalf("%s of %s: outcome %q, want %q", kind, req.ClientName, out.ReturnValue.Type, want)
	}
}
