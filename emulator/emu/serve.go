package emu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listen opens a TCP listener; "" means a free port on 127.0.0.1, because the emulators have no
// authentication worth the name and must not be reachable from the network.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// HTTPServer is an http.Server on its own listener, stopped like httptest.Server: Close waits for
// requests in flight.
type HTTPServer struct {
	// URL is https://host:port with TLS, http://host:port without.
	URL  string
	srv  *http.Server
	done chan struct{}
}

// Serve serves h on ln until Close, over TLS when tlsConfig is not nil. Server errors go to log
// at debug level: a client hanging up is not news.
func Serve(ln net.Listener, h http.Handler, tlsConfig *tls.Config, log *slog.Logger) *HTTPServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &HTTPServer{
		URL:  "http://" + ln.Addr().String(),
		done: make(chan struct{}),
		srv: &http.Server{
			Handler: h, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	if tlsConfig != nil {
		s.URL = "https://" + ln.Addr().String()
	}
	go func() {
		defer close(s.done)
		var err error
		if tlsConfig != nil {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return s
}

// Close stops accepting, waits up to five seconds for requests in flight, then cuts the rest.
// It is safe on a nil server, so an emulator without a listener can call it unconditionally.
func (s *HTTPServer) Close() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// Client is an HTTP client that trusts pool and nothing else, with HTTP/2 as the SDKs use it.
func Client(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil, // a developer's HTTPS_PROXY must not see loopback traffic
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
		IdleConnTimeout:   30 * time.Second,
	}}
}

// CloseClient drops a client's idle connections, which would otherwise hold a server's Shutdown
// for its GOAWAY grace period.
func CloseClient(c *http.Client) {
	if c == nil {
		return
	}
	c.CloseIdleConnections()
}
