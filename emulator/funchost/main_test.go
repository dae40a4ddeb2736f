package funchost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// The test binary doubles as the custom handler: started with
// FUNCHOST_TEST_HANDLER set, it runs testHandlerMain instead of the tests.
// The child is a thin proxy to an upstream http.Handler inside the test
// process, so each test writes its handler's behaviour in plain Go.
func TestMain(m *testing.M) {
	if os.Getenv("FUNCHOST_TEST_HANDLER") != "" {
		testHandlerMain()
		return
	}
	os.Exit(m.Run())
}

// startupReport is what the child tells the test about how it was started.
type startupReport struct {
	PID  int               `json:"pid"`
	Args []string          `json:"args"`
	Dir  string            `json:"dir"`
	Env  map[string]string `json:"env"`
}

// reportedEnv lists the variables the child reports back.
var reportedEnv = []string{
	"FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT",
	"FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "FUNCTIONS_HTTPWORKER_ID",
	"FUNCTIONS_APP_ROOT_PATH", "FUNCTIONS_WORKER_RUNTIME",
	"APP_SETTING", "FUNCHOST_TEST_BASE",
}

func testHandlerMain() {
	upstream := os.Getenv("FUNCHOST_TEST_UPSTREAM")
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	fmt.Println("test handler starting")
	fmt.Fprintln(os.Stderr, "test handler stderr line")

	rep := startupReport{PID: os.Getpid(), Args: os.Args[1:], Env: map[string]string{}}
	rep.Dir, _ = os.Getwd()
	for _, k := range reportedEnv {
		if v, ok := os.LookupEnv(k); ok {
			rep.Env[k] = v
		}
	}
	body, _ := json.Marshal(rep)
	resp, err := http.Post(upstream+"/_started", "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(os.Stderr, "test handler: upstream:", err)
		os.Exit(2)
	}
	// The upstream decides how this run behaves: exit at once, or wait
	// before listening.
	resp.Body.Close()
	switch resp.Header.Get("X-Test-Start") {
	case "exit":
		os.Exit(3)
	case "slow":
		time.Sleep(300 * time.Millisecond)
	case "hang":
		time.Sleep(time.Hour)
	}

	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test handler: listen:", err)
		os.Exit(2)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.Header.Get("X-Test-Die") != "" {
			os.Exit(7) // mid-flight: the host sees the connection drop
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		if resp.Header.Get("Content-Type") == "" {
			w.Header()["Content-Type"] = nil // do not let net/http sniff one
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	_ = srv.Serve(l)
}
