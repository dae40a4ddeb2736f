package ca

import (
	"crypto/tls"
	"net"
	"testing"
)

func TestHandshakeTrustsOnlyPool(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", a.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	for _, name := range []string{"127.0.0.1", "localhost"} {
		t.Run(name, func(t *testing.T) {
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: a.Pool(), ServerName: name})
			if err != nil {
				t.Fatalf("dial trusting the pool: %v", err)
			}
			c.Close()
		})
	}
	t.Run("SystemRootsRefuse", func(t *testing.T) {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "127.0.0.1"})
		if err == nil {
			c.Close()
			t.Fatal("handshake succeeded without trusting the test CA")
		}
	})
	if _, _, err := net.SplitHostPort(ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
}
