package servicebusemu

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// rawConn is a hand-driven AMQP client for protocol edge cases the SDKs
// never produce.
type rawConn struct {
	tb  testing.TB
	nc  net.Conn
	r   *bufio.Reader
	buf []byte
	// Session flow state as the client: transfers received and the window
	// it keeps offering.
	nextIn uint32
	window uint32
}

func dialRaw(tb testing.TB, s *Server) *rawConn {
	tb.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	return &rawConn{tb: tb, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) write(b []byte) {
	c.tb.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.tb.Fatal(err)
	}
}

func (c *rawConn) send(typ uint8, ch uint16, p amqp.Performative, payload []byte) {
	c.tb.Helper()
	b, err := amqp.AppendFrame(nil, typ, ch, p, payload)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.write(b)
}

// next returns the next non-empty frame (or an error, e.g. EOF).
func (c *rawConn) next() (amqp.Frame, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := amqp.ReadFrame(c.r, 1<<20, &c.buf)
		if err != nil || f.Body != nil {
			if t, ok := f.Body.(amqp.Transfer); ok {
				c.nextIn++
				t.Payload = append([]byte(nil), t.Payload...)
				f.Body = t
			}
			return f, err
		}
	}
}

func expectFrame[T amqp.Performative](c *rawConn) T {
	c.tb.Helper()
	f, err := c.next()
	if err != nil {
		c.tb.Fatalf("waiting for %T: %v", *new(T), err)
	}
	p, ok := f.Body.(T)
	if !ok {
		c.tb.Fatalf("got %T %+v, want %T", f.Body, f.Body, *new(T))
	}
	return p
}

func (c *rawConn) header(h [8]byte) {
	c.tb.Helper()
	c.write(h[:])
	var got [8]byte
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.Read(got[:]); err != nil || got != h {
		c.tb.Fatalf("header % x, %v", got, err)
	}
}

// open performs SASL ANONYMOUS, open and begin on channel 0.
func (c *rawConn) open(idle time.Duration, window uint32) {
	c.tb.Helper()
	c.header(amqp.HeaderSASL)
	expectFrame[amqp.SASLMechanisms](c)
	c.send(amqp.FrameSASL, 0, amqp.SASLInit{Mechanism: "ANONYMOUS", InitialResponse: []byte("anonymous")}, nil)
	if o := expectFrame[amqp.SASLOutcome](c); o.Code != 0 {
		c.tb.Fatalf("sasl outcome %d", o.Code)
	}
	c.header(amqp.HeaderAMQP)
	c.send(amqp.FrameAMQP, 0, amqp.Open{ContainerID: "raw", MaxFrameSize: 1024, IdleTimeout: idle}, nil)
	expectFrame[amqp.Open](c)
	c.window = window
	c.send(amqp.FrameAMQP, 0, amqp.Begin{NextOutgoingID: 0, IncomingWindow: window, OutgoingWindow: 100}, nil)
	expectFrame[amqp.Begin](c)
}

// expectClose reads until the server's close and returns its error, then
// checks that the server hung up.
func (c *rawConn) expectClose() *amqp.Error {
	c.tb.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.tb.Fatalf("connection ended without close: %v", err)
		}
		if cl, ok := f.Body.(amqp.Close); ok {
			if _, err := c.next(); err == nil {
				c.tb.Fatal("connection still open after close")
			}
			return cl.Error
		}
	}
}

func sasToken(audience, keyName, key string) string {
	sr := strings.ToLower(url.QueryEscape(audience))
	se := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(mac, "%s\n%s", sr, se)
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return fmt.Sprintf("SharedAccessSignature sr=%s&sig=%s&se=%s&skn=%s", sr, sig, se, keyName)
}

// authorize puts a CBS token for path on handles 0 and 1 and returns the
// status code.
func (c *rawConn) authorize(s *Server, path string) int32 {
	c.tb.Helper()
	return c.authorizeWith(s, path, s.key)
}

// authorizeWith signs the token with key.
func (c *rawConn) authorizeWith(s *Server, path, key string) int32 {
	c.tb.Helper()
	c.send(amqp.FrameAMQP, 0, amqp.Attach{Name: "cbs-s", Handle: 0, Role: amqp.RoleSender, SndSettleMode: amqp.SndSettled,
		Target: &amqp.Target{Address: "$cbs"}, Source: &amqp.Source{Address: "cbs-s"}}, nil)
	expectFrame[amqp.Attach](c)
	expectFrame[amqp.Flow](c)
	c.send(amqp.FrameAMQP, 0, amqp.Attach{Name: "cbs-r", Handle: 1, Role: amqp.RoleReceiver, SndSettleMode: amqp.SndSettled,
		Source: &amqp.Source{Address: "$cbs"}, Target: &amqp.Target{Address: "raw-reply"}}, nil)
	expectFrame[amqp.Attach](c)
	credit, h := uint32(1), uint32(1)
	c.send(amqp.FrameAMQP, 0, amqp.Flow{NextIncomingID: &c.nextIn, IncomingWindow: c.window, OutgoingWindow: 100, Handle: &h, LinkCredit: &credit}, nil)
	audience := "amqp://" + s.Addr() + "/" + path
	req := &goamqp.Message{
		Properties:            &goamqp.MessageProperties{MessageID: "req-1", ReplyTo: ptrTo("raw-reply")},
		ApplicationProperties: map[string]any{"operation": "put-token", "type": tokenTypeSAS, "name": audience},
		Value:                 sasToken(audience, s.keyName, key),
	}
	payload, err := req.MarshalBinary()
	if err != nil {
		c.tb.Fatal(err)
	}
	id := uint32(0)
	c.send(amqp.FrameAMQP, 0, amqp.Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{0}, Settled: true}, payload)
	t := expectFrame[amqp.Transfer](c)
	var resp goamqp.Message
	if err := resp.UnmarshalBinary(t.Payload); err != nil {
		c.tb.Fatal(err)
	}
	if resp.Properties.CorrelationID != "req-1" {
		c.tb.Fatalf("correlation id %v", resp.Properties.CorrelationID)
	}
	code, ok := resp.ApplicationProperties["status-code"].(int32)
	if !ok {
		c.tb.Fatalf("status-code is %T", resp.ApplicationProperties["status-code"])
	}
	return code
}

func ptrTo[T any](v T) *T { return &v }
