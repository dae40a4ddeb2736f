package graph

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingTransport keeps the Content-Encoding of every request it sees.
type recordingTransport struct {
	mu        sync.Mutex
	encodings []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.encodings = append(r.encodings, req.Header.Get("Content-Encoding"))
	r.mu.Unlock()
	return &http.Response{StatusCode: 204, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// Request bodies go out as they are: compressing them cost CPU for nothing Graph asks for.
func TestRequestBodiesAreNotCompressed(t *testing.T) {
	rt := &recordingTransport{}
	c := httpClient(&http.Client{Transport: rt}, &writePressure{now: time.Now})
	body := strings.Repeat(`{"displayName":"x"}`, 100)
	req, _ := http.NewRequest(http.MethodPatch, "https://graph.microsoft.com/v1.0/applications/x", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(rt.encodings) != 1 || rt.encodings[0] != "" {
		t.Errorf("Content-Encoding sent: %q", rt.encodings)
	}
}
