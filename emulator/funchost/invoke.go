package funchost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
)

// maxResponse bounds the handler's response body.
const maxResponse = 16 << 20

// invocationResult is the handler's answer, HttpScriptInvocationResult.
type invocationResult struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []json.RawMessage          `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

// callResult is what one POST to the handler came to.
type callResult struct {
	status int
	logs   []string
	err    error // nil when the invocation succeeded
}

// call POSTs one invocation to the handler and judges the answer as the
// host does: it fails on a transport error, on a timeout at functionTimeout,
// on a non-2xx status (EnsureSuccessStatusCode), on a Content-Type other
// than JSON (no MediaTypeFormatter can read it), and on a body that does not
// parse as an object. An empty or null body also fails: the host would never
// complete the invocation and it would time out.
func (h *Host) call(ctx context.Context, function, invocationID string, body []byte) callResult {
	if t := h.app.Host.FunctionTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.worker.baseURL()+"/"+function, bytes.NewReader(body))
	if err != nil {
		return callResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", invocationID)
	req.Header.Set("X-Azure-Functions-HostVersion", h.opts.HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+h.opts.HostVersion)

	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return callResult{err: fmt.Errorf("timed out after functionTimeout %s", formatTimeSpan(h.app.Host.FunctionTimeout))}
		}
		return callResult{err: fmt.Errorf("calling the handler: %w", err)}
	}
	defer resp.Body.Close()
	res := callResult{status: resp.StatusCode}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.err = fmt.Errorf("timed out after functionTimeout %s", formatTimeSpan(h.app.Host.FunctionTimeout))
		return res
	case err != nil:
		res.err = fmt.Errorf("reading the handler's response: %w", err)
		return res
	case len(raw) > maxResponse:
		res.err = fmt.Errorf("handler response is larger than %d bytes", maxResponse)
		return res
	}
	// Logs are shown whatever the status, so a failing handler's own account
	// of the failure is not lost.
	var result invocationResult
	parseErr := json.Unmarshal(raw, &result)
	if parseErr == nil {
		res.logs = logLines(result.Logs)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = fmt.Errorf("handler answered HTTP %d", resp.StatusCode)
		return res
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && mt != "text/json" {
		if ct == "" {
			ct = "none"
		}
		res.err = fmt.Errorf("handler answered Content-Type %s; the host reads only application/json (set it explicitly: Go sniffs text/plain)", ct)
		return res
	}
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0 || string(trimmed) == "null":
		res.err = errors.New("handler answered an empty body; the host would wait for a result until functionTimeout")
	case trimmed[0] != '{':
		res.err = errors.New("handler response is not a JSON object {Outputs, Logs, ReturnValue}")
	case parseErr != nil:
		res.err = fmt.Errorf("handler response does not parse as {Outputs, Logs, ReturnValue}: %v", parseErr)
	}
	return res
}

func logLines(raw []json.RawMessage) []string {
	var out []string
	for _, r := range raw {
		var s string
		if json.Unmarshal(r, &s) == nil {
			out = append(out, s)
		} else if string(r) != "null" {
			out = append(out, string(r))
		}
	}
	return out
}

// durationMS renders a duration for logs.
func durationMS(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
