package servicebusemu

import (
	"encoding/binary"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// TestProtocolViolations checks that a misbehaving client is closed with an
// AMQP error while an SDK client on the same emulator keeps working.
func TestProtocolViolations(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name string
		do   func(c *rawConn)
		want amqp.Symbol
	}{
		{"garbage frame body", func(c *rawConn) {
			c.write([]byte{0, 0, 0, 12, 2, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef})
		}, amqp.ErrDecode},
		{"oversize frame", func(c *rawConn) {
			c.write(binary.BigEndian.AppendUint32(nil, 1<<24))
			c.write([]byte{2, 0, 0, 0})
		}, amqp.ErrFramingError},
		{"bad data offset", func(c *rawConn) {
			c.write([]byte{0, 0, 0, 8, 1, 0, 0, 0})
		}, amqp.ErrFramingError},
		{"frame on a channel without session", func(c *rawConn) {
			c.send(amqp.FrameAMQP, 9, amqp.Flow{IncomingWindow: 1, OutgoingWindow: 1}, nil)
		}, amqp.ErrNotAllowed},
		{"transfer on an unattached handle", func(c *rawConn) {
			c.send(amqp.FrameAMQP, 0, amqp.Transfer{Handle: 7, DeliveryID: u32(0), DeliveryTag: []byte{1}}, []byte{0, 0x53, 0x77, 0x40})
		}, amqp.ErrUnattachedHandle},
		{"second open", func(c *rawConn) {
			c.send(amqp.FrameAMQP, 0, amqp.Open{ContainerID: "again"}, nil)
		}, amqp.ErrIllegalState},
		{"sasl frame after open", func(c *rawConn) {
			c.send(amqp.FrameSASL, 0, amqp.SASLInit{Mechanism: "ANONYMOUS"}, nil)
		}, amqp.ErrFramingError},
		{"begin on a channel in use", func(c *rawConn) {
			c.send(amqp.FrameAMQP, 0, amqp.Begin{IncomingWindow: 1, OutgoingWindow: 1}, nil)
		}, amqp.ErrNotAllowed},
		{"handle above handle-max", func(c *rawConn) {
			c.send(amqp.FrameAMQP, 0, amqp.Attach{Name: "x", Handle: 100000, Role: amqp.RoleSender, Target: &amqp.Target{Address: "q"}}, nil)
		}, amqp.ErrFramingError},
	}
	srv := startServer(t, &Options{Config: testConfig()})
	sdk := newClient(t, srv.ConnectionString())
	ctx := testContext(t)
	sender := newSender(t, sdk, testQueue)
	receiver := newReceiver(t, sdk, testQueue, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.open(0, 100)
			tt.do(c)
			e := c.expectClose()
			if e == nil || e.Condition != tt.want {
				t.Fatalf("close error %v, want %s", e, tt.want)
			}
			// The emulator still serves the well-behaved client.
			if err := sender.SendMessage(ctx, textMessage(tt.name), nil); err != nil {
				t.Fatal(err)
			}
			m := receiveN(t, ctx, receiver, 1)[0]
			if string(m.Body) != tt.name {
				t.Fatalf("got %q", m.Body)
			}
			if err := receiver.CompleteMessage(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnsupportedProtocolHeader(t *testing.T) {
	srv := startServer(t, nil)
	c := dialRaw(t, srv)
	c.write([]byte("GET / HTTP/1.1\r\n\r\n"))
	var got [8]byte
	if _, err := c.r.Read(got[:]); err != nil || got != amqp.HeaderSASL {
		t.Fatalf("reply % x %v", got, err)
	}
	if _, err := c.next(); err == nil {
		t.Fatal("connection still open")
	}
}

func TestHeartbeats(t *testing.T) {
	t.Run("server sends empty frames at half the client's idle-timeout", func(t *testing.T) {
		srv := startServer(t, nil)
		c := dialRaw(t, srv)
		c.open(100*time.Millisecond, 100)
		_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		var hdr [8]byte
		if _, err := c.r.Read(hdr[:]); err != nil {
			t.Fatal(err)
		}
		if hdr != [8]byte{0, 0, 0, 8, 2, 0, 0, 0} {
			t.Fatalf("got % x, want an empty frame", hdr)
		}
	})
	t.Run("a silent client is closed after the idle-timeout", func(t *testing.T) {
		srv := startServer(t, &Options{IdleTimeout: 100 * time.Millisecond})
		c := dialRaw(t, srv)
		c.header(amqp.HeaderSASL)
		expectFrame[amqp.SASLMechanisms](c)
		c.send(amqp.FrameSASL, 0, amqp.SASLInit{Mechanism: "ANONYMOUS"}, nil)
		expectFrame[amqp.SASLOutcome](c)
		c.header(amqp.HeaderAMQP)
		c.send(amqp.FrameAMQP, 0, amqp.Open{ContainerID: "raw"}, nil)
		if o := expectFrame[amqp.Open](c); o.IdleTimeout != 100*time.Millisecond {
			t.Fatalf("advertised idle-timeout %v", o.IdleTimeout)
		}
		if e := c.expectClose(); e == nil || e.Condition != amqp.ErrResourceLimit {
			t.Fatalf("close error %v", e)
		}
	})
}

// receiverLink attaches a PeekLock receiver on handle 2.
func (c *rawConn) receiverLink(entity string) {
	c.tb.Helper()
	c.send(amqp.FrameAMQP, 0, amqp.Attach{Name: "recv", Handle: 2, Role: amqp.RoleReceiver, SndSettleMode: amqp.SndUnsettled,
		RcvSettleMode: amqp.RcvSecond, Source: &amqp.Source{Address: entity}, Target: &amqp.Target{Address: "me"}}, nil)
	if a := expectFrame[amqp.Attach](c); a.Source == nil {
		c.tb.Fatal("attach refused")
	}
}

func (c *rawConn) credit(n uint32, drain bool) {
	h, dc := uint32(2), uint32(0)
	c.send(amqp.FrameAMQP, 0, amqp.Flow{NextIncomingID: &c.nextIn, IncomingWindow: c.window, OutgoingWindow: 100,
		Handle: &h, LinkCredit: &n, DeliveryCount: &dc, Drain: drain}, nil)
}

func TestLinkFlowControl(t *testing.T) {
	t.Run("unauthorized attach is refused", func(t *testing.T) {
		srv := startServer(t, &Options{Config: testConfig()})
		c := dialRaw(t, srv)
		c.open(0, 100)
		c.send(amqp.FrameAMQP, 0, amqp.Attach{Name: "recv", Handle: 2, Role: amqp.RoleReceiver, Source: &amqp.Source{Address: testQueue}}, nil)
		if a := expectFrame[amqp.Attach](c); a.Source != nil {
			t.Fatal("attach accepted without a CBS token")
		}
		if d := expectFrame[amqp.Detach](c); d.Error == nil || d.Error.Condition != amqp.ErrUnauthorized {
			t.Fatalf("detach %+v", d)
		}
	})
	t.Run("transaction coordinator is refused", func(t *testing.T) {
		srv := startServer(t, &Options{Config: testConfig()})
		c := dialRaw(t, srv)
		c.open(0, 100)
		c.send(amqp.FrameAMQP, 0, amqp.Attach{Name: "txn", Handle: 4, Role: amqp.RoleSender,
			Source: &amqp.Source{Address: "me"}, Target: &amqp.Target{Coordinator: true}}, nil)
		if a := expectFrame[amqp.Attach](c); a.Target != nil {
			t.Fatal("coordinator accepted")
		}
		if d := expectFrame[amqp.Detach](c); d.Error == nil || d.Error.Condition != amqp.ErrNotImplemented {
			t.Fatalf("detach %+v", d)
		}
	})
	t.Run("wrong key gets 401", func(t *testing.T) {
		srv := startServer(t, &Options{Config: testConfig()})
		c := dialRaw(t, srv)
		c.open(0, 100)
		if code := c.authorizeWith(srv, testQueue, "not-the-key"); code != 401 {
			t.Fatalf("status %d", code)
		}
	})
	t.Run("drain on an empty queue returns the credit", func(t *testing.T) {
		srv := startServer(t, &Options{Config: testConfig()})
		c := dialRaw(t, srv)
		c.open(0, 100)
		if code := c.authorize(srv, testQueue); code != 202 {
			t.Fatalf("put-token status %d", code)
		}
		c.receiverLink(testQueue)
		c.credit(5, true)
		f := expectFrame[amqp.Flow](c)
		if !f.Drain || f.LinkCredit == nil || *f.LinkCredit != 0 || *f.DeliveryCount != 5 {
			t.Fatalf("drain reply %+v", f)
		}
	})
	t.Run("session window limits transfers; release keeps the count", func(t *testing.T) {
		srv := startServer(t, &Options{Config: testConfig()})
		ctx := testContext(t)
		mustSend(t, ctx, newClient(t, srv.ConnectionString()), testQueue, textMessage("1"), textMessage("2"), textMessage("3"))
		c := dialRaw(t, srv)
		c.open(0, 2) // room for the CBS reply and one delivery
		c.authorize(srv, testQueue)
		c.window = 1
		c.receiverLink(testQueue)
		c.credit(3, false)
		first := expectFrame[amqp.Transfer](c)
		_ = c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if f, err := amqp.ReadFrame(c.r, 1<<20, &c.buf); err == nil && f.Body != nil {
			t.Fatalf("sent %T beyond the session window", f.Body)
		}
		// Release the first delivery, then open the window.
		c.send(amqp.FrameAMQP, 0, amqp.Disposition{Role: amqp.RoleReceiver, First: *first.DeliveryID, State: amqp.Released{}}, nil)
		if d := expectFrame[amqp.Disposition](c); !d.Settled {
			t.Fatalf("disposition %+v", d)
		}
		c.send(amqp.FrameAMQP, 0, amqp.Flow{NextIncomingID: &c.nextIn, IncomingWindow: 10, NextOutgoingID: 1, OutgoingWindow: 100}, nil)
		var bodies []string
		for range 2 {
			tr := expectFrame[amqp.Transfer](c)
			var m goamqp.Message
			if err := m.UnmarshalBinary(tr.Payload); err != nil {
				t.Fatal(err)
			}
			if m.Header.DeliveryCount != 0 {
				t.Fatalf("delivery count %d after release", m.Header.DeliveryCount)
			}
			bodies = append(bodies, string(m.GetData()))
		}
		// The released message is available again, first in line.
		if bodies[0] != "1" && bodies[1] != "1" {
			t.Fatalf("got %v", bodies)
		}
	})
	t.Run("multi-frame transfer from the client", func(t *testing.T) {
		srv := startServer(t, &Options{Config: testConfig()})
		c := dialRaw(t, srv)
		c.open(0, 100)
		c.authorize(srv, testQueue)
		c.send(amqp.FrameAMQP, 0, amqp.Attach{Name: "send", Handle: 3, Role: amqp.RoleSender, Target: &amqp.Target{Address: testQueue}}, nil)
		expectFrame[amqp.Attach](c)
		expectFrame[amqp.Flow](c)
		payload, _ := (&goamqp.Message{Data: [][]byte{make([]byte, 3000)}}).MarshalBinary()
		id := uint32(1)
		for off := 0; off < len(payload); off += 1000 {
			t := amqp.Transfer{Handle: 3, More: off+1000 < len(payload)}
			if off == 0 {
				t.DeliveryID, t.DeliveryTag = &id, []byte{1}
			}
			c.send(amqp.FrameAMQP, 0, t, payload[off:min(off+1000, len(payload))])
		}
		d := expectFrame[amqp.Disposition](c)
		if _, ok := d.State.(amqp.Accepted); !ok || d.First != 1 {
			t.Fatalf("disposition %+v", d)
		}
		if st := counts(t, srv, testQueue); st.Active != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}
