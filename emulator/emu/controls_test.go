package emu_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"appreg/emulator/emu"
)

func newControls(tb testing.TB) (*emu.Controls, *int) {
	tb.Helper()
	resets := new(int)
	c := emu.New(emu.Config{
		Service:    "svc",
		Operations: []string{"get", "put"},
		ResetData:  func() { *resets++ },
		State:      func() any { return map[string]int{"items": 1} },
	})
	return c, resets
}

func TestTake(t *testing.T) {
	tests := []struct {
		name   string
		faults []emu.Fault
		calls  []string
		want   []int // status served per call, 0 for none
	}{
		{"none", nil, []string{"get", "put"}, []int{0, 0}},
		{"counted", []emu.Fault{{Operation: "get", Status: 503, Count: 2}}, []string{"get", "put", "get", "get"}, []int{503, 0, 503, 0}},
		{"until cleared", []emu.Fault{{Status: 500}}, []string{"get", "put", "get"}, []int{500, 500, 500}},
		{"in order", []emu.Fault{{Operation: "*", Status: 500, Count: 1}, {Operation: "get", Status: 404, Count: 1}}, []string{"get", "get", "get"}, []int{500, 404, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newControls(t)
			for _, f := range tt.faults {
				if err := c.InjectFault(f); err != nil {
					t.Fatal(err)
				}
			}
			var got []int
			for _, op := range tt.calls {
				_, f := c.Take(op)
				status := 0
				if f != nil {
					status = f.Status
				}
				got = append(got, status)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if n := c.Stats().Operations["get"]; n != strings.Count(strings.Join(tt.calls, " "), "get") {
				t.Errorf("get counted %d times", n)
			}
		})
	}
}

// A fault with a probability hits about that fraction of calls; one with For stops on its own.
func TestFaultProbabilityAndExpiry(t *testing.T) {
	c, _ := newControls(t)
	if err := c.InjectFault(emu.Fault{Operation: "get", Status: 503, Probability: 0.05}); err != nil {
		t.Fatal(err)
	}
	hits := 0
	const n = 20000
	for range n {
		if _, f := c.Take("get"); f != nil {
			hits++
		}
	}
	// 5 % of 20,000 is 1,000 with a standard deviation of about 31: ±200 fails once in 10^10.
	if hits < 800 || hits > 1200 {
		t.Errorf("a 5 %% fault hit %d of %d calls", hits, n)
	}

	c.ClearFaults()
	if err := c.InjectFault(emu.Fault{Status: 403, For: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, f := c.Take("put"); f == nil || f.Status != 403 {
		t.Fatalf("a fault armed for 50ms did not apply at once: %+v", f)
	}
	time.Sleep(80 * time.Millisecond)
	if _, f := c.Take("put"); f != nil {
		t.Errorf("a fault armed for 50ms still applied after 80ms: %+v", f)
	}
	if got := c.Faults(); len(got) != 0 {
		t.Errorf("an expired fault is still listed: %+v", got)
	}
}

func TestInjectFaultRefuses(t *testing.T) {
	c, _ := newControls(t)
	for _, f := range []emu.Fault{
		{Operation: "nope", Status: 500},
		{Status: 200},
		{},
		{Status: 500, Count: -1},
		{Latency: -time.Second},
		{Status: 500, Probability: 1.5},
		{Status: 500, For: -time.Second},
	} {
		if err := c.InjectFault(f); err == nil {
			t.Errorf("InjectFault(%+v) accepted", f)
		}
	}
	if err := c.SetLatency("nope", time.Second); err == nil {
		t.Error("SetLatency accepted an unknown operation")
	}
}

func TestLatencyAndReset(t *testing.T) {
	c, resets := newControls(t)
	if err := c.SetLatency("*", 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLatency("get", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.InjectFault(emu.Fault{Operation: "get", Latency: 5 * time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if d, f := c.Take("get"); d != 35*time.Millisecond || f == nil {
		t.Errorf("get waits %v, fault %v", d, f)
	}
	if d, _ := c.Take("put"); d != 10*time.Millisecond {
		t.Errorf("put waits %v", d)
	}
	if err := c.Throttle("put", time.Second, 0); err != nil {
		t.Fatal(err)
	}
	c.Reset()
	if d, f := c.Take("put"); d != 0 || f != nil {
		t.Errorf("after Reset: wait %v, fault %v", d, f)
	}
	if st := c.Stats(); st.Operations["get"] != 0 || st.Faults != 0 || *resets != 1 {
		t.Errorf("after Reset: stats %+v, data resets %d", st, *resets)
	}
}

func TestHandler(t *testing.T) {
	c, resets := newControls(t)
	srv := httptest.NewServer(emu.Handler(c, emu.Route{Pattern: "POST poke", Handle: func(r *http.Request) (any, error) {
		if r.URL.Query().Get("what") == "" {
			return nil, emu.ErrNotFound
		}
		return map[string]string{"poked": r.URL.Query().Get("what")}, nil
	}}))
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	tests := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"POST", "/_emu/svc/faults", `{"operation":"get","status":503,"code":"Busy","message":"m","latencyMs":20,"retryAfterSeconds":2,"count":3}`, 204, ""},
		{"GET", "/_emu/svc/faults", "", 200, `{"faults":[{"operation":"get","status":503,"code":"Busy","message":"m","latencyMs":20,"retryAfterSeconds":2,"count":3}]}`},
		{"POST", "/_emu/svc/faults", `{"operation":"get","stauts":503}`, 400, `"code":"BadRequest"`},
		{"POST", "/_emu/svc/faults", `{"operation":"nope","status":503}`, 400, "unknown operation"},
		{"DELETE", "/_emu/svc/faults", "", 204, ""},
		{"POST", "/_emu/svc/throttle", `{"operation":"put","retryAfterSeconds":1,"count":1}`, 204, ""},
		{"GET", "/_emu/svc/faults", "", 200, `"status":429`},
		{"PUT", "/_emu/svc/latency", `{"operation":"get","latencyMs":40}`, 204, ""},
		{"GET", "/_emu/svc/latency", "", 200, `{"latency":[{"operation":"get","latencyMs":40}]}`},
		{"DELETE", "/_emu/svc/latency", "", 204, ""},
		{"GET", "/_emu/svc/latency", "", 200, `{"latency":[]}`},
		{"GET", "/_emu/svc/stats", "", 200, `{"operations":{},"faultsInjected":0}`},
		{"GET", "/_emu/svc/state", "", 200, `{"items":1}`},
		{"POST", "/_emu/svc/poke?what=x", "", 200, `{"poked":"x"}`},
		{"POST", "/_emu/svc/poke", "", 404, `"code":"NotFound"`},
		{"GET", "/_emu/svc/poke", "", 405, `"code":"MethodNotAllowed"`},
		{"GET", "/_emu/svc/nothing", "", 404, `"code":"NotFound"`},
		{"POST", "/_emu/svc/reset", "", 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, body := do(tt.method, tt.path, tt.body)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Errorf("%d %s, want %d containing %s", status, body, tt.status, tt.contains)
			}
			if status >= 400 {
				var e emu.ControlError
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
					t.Errorf("control error body %s", body)
				}
			}
		})
	}
	if *resets != 1 || len(c.Faults()) != 0 {
		t.Errorf("after POST reset: %d data resets, faults %v", *resets, c.Faults())
	}
}
