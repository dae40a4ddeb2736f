package servicebusemu

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// frames encodes performatives (and transfer payloads) back to back.
func frames(tb testing.TB, typ uint8, ps ...amqp.Performative) []byte {
	tb.Helper()
	var out []byte
	for _, p := range ps {
		var payload []byte
		if t, ok := p.(amqp.Transfer); ok {
			payload = t.Payload
		}
		var err error
		if out, err = amqp.AppendFrame(out, typ, 0, p, payload); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// FuzzConnection feeds arbitrary frames to a connection that has completed
// SASL, open and begin. The emulator must never panic, whatever the client
// sends.
func FuzzConnection(f *testing.F) {
	srv := startServer(f, &Options{Config: testConfig(), Key: "fuzz-key", IdleTimeout: 5 * time.Second})
	prelude := append(amqp.HeaderSASL[:], frames(f, amqp.FrameSASL, amqp.SASLInit{Mechanism: "ANONYMOUS"})...)
	prelude = append(prelude, amqp.HeaderAMQP[:]...)
	prelude = append(prelude, frames(f, amqp.FrameAMQP,
		amqp.Open{ContainerID: "fuzz", MaxFrameSize: 4096},
		amqp.Begin{IncomingWindow: 100, OutgoingWindow: 100})...)

	u32 := func(v uint32) *uint32 { return &v }
	audience := "amqp://" + srv.Addr() + "/" + testQueue
	token, _ := (&goamqp.Message{
		Properties:            &goamqp.MessageProperties{MessageID: "1", ReplyTo: ptrTo("r")},
		ApplicationProperties: map[string]any{"operation": "put-token", "type": tokenTypeSAS, "name": audience},
		Value:                 sasToken(audience, "RootManageSharedAccessKey", "fuzz-key"),
	}).MarshalBinary()
	body, _ := (&goamqp.Message{Data: [][]byte{[]byte("x")}}).MarshalBinary()
	cbs := []amqp.Performative{
		amqp.Attach{Name: "s", Handle: 0, Role: amqp.RoleSender, Target: &amqp.Target{Address: "$cbs"}},
		amqp.Attach{Name: "r", Handle: 1, Role: amqp.RoleReceiver, Source: &amqp.Source{Address: "$cbs"}, Target: &amqp.Target{Address: "r"}},
		amqp.Flow{IncomingWindow: 100, OutgoingWindow: 100, Handle: u32(1), LinkCredit: u32(10)},
		amqp.Transfer{Handle: 0, DeliveryID: u32(0), DeliveryTag: []byte{0}, Payload: token},
	}
	f.Add(frames(f, amqp.FrameAMQP, cbs...))
	f.Add(frames(f, amqp.FrameAMQP, append(cbs,
		amqp.Attach{Name: "q", Handle: 2, Role: amqp.RoleSender, Target: &amqp.Target{Address: testQueue}},
		amqp.Transfer{Handle: 2, DeliveryID: u32(1), DeliveryTag: []byte{1}, MessageFormat: u32(batchFormat), Payload: body},
		amqp.Transfer{Handle: 2, DeliveryID: u32(2), DeliveryTag: []byte{2}, More: true, Payload: body[:3]},
		amqp.Transfer{Handle: 2, Payload: body[3:]},
		amqp.Attach{Name: "rq", Handle: 3, Role: amqp.RoleReceiver, RcvSettleMode: amqp.RcvSecond, Source: &amqp.Source{Address: testQueue}},
		amqp.Flow{IncomingWindow: 100, OutgoingWindow: 100, Handle: u32(3), LinkCredit: u32(10), Drain: true},
		amqp.Disposition{Role: amqp.RoleReceiver, First: 0, Last: u32(1 << 31), State: amqp.Modified{DeliveryFailed: true}},
		amqp.Disposition{Role: amqp.RoleReceiver, First: 1, State: amqp.Rejected{Error: &amqp.Error{Condition: "x"}}},
		amqp.Detach{Handle: 3, Closed: true},
		amqp.End{},
		amqp.Close{},
	)...))
	f.Add([]byte{0, 0, 0, 8, 2, 0, 0, 0})

	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		c := srv.serveConn(server)
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, client); close(drained) }()
		wrote := make(chan struct{})
		go func() {
			client.Write(prelude)
			client.Write(in)
			client.Close()
			close(wrote)
		}()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("connection did not end:\n%s", buf[:runtime.Stack(buf, true)])
		}
		client.Close()
		<-wrote
		<-drained
		if n := srv.panics.Load(); n != 0 {
			t.Fatalf("%d connection(s) panicked", n)
		}
	})
}
