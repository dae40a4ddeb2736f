package amqp

import (
	"bytes"
	"testing"
)

func seedFrames(f *testing.F) {
	for _, p := range []Performative{
		Open{ContainerID: "c", MaxFrameSize: 65536},
		Begin{NextOutgoingID: 1, IncomingWindow: 10, OutgoingWindow: 10},
		Attach{Name: "l", Role: RoleReceiver, Source: &Source{Address: "q", Filter: Map{{Symbol("f"), Described{Descriptor: uint64(1), Value: nil}}}}, Target: &Target{Address: "r"}},
		Flow{IncomingWindow: 1, Handle: u32p(0), LinkCredit: u32p(5), Drain: true},
		Transfer{Handle: 0, DeliveryID: u32p(1), DeliveryTag: []byte{1}, Payload: []byte{0, 0x53, 0x75, 0xa0, 0}},
		Disposition{Role: RoleReceiver, First: 1, Settled: true, State: Modified{MessageAnnotations: Map{{"k", []int64{1}}}}},
		Detach{Handle: 1, Error: &Error{Condition: ErrInternal}},
		SASLInit{Mechanism: "ANONYMOUS"},
	} {
		var payload []byte
		if t, ok := p.(Transfer); ok {
			payload = t.Payload
		}
		b, err := AppendFrame(nil, FrameAMQP, 0, p, payload)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader: it must never
// panic, never buffer more than max-frame-size, and whatever it accepts must
// re-encode to a frame it accepts again.
func FuzzReadFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 4096
		var buf []byte
		fr, err := ReadFrame(bytes.NewReader(in), max, &buf)
		if cap(buf) > max {
			t.Fatalf("buffer grew to %d", cap(buf))
		}
		if err != nil || fr.Body == nil {
			return
		}
		var payload []byte
		if tr, ok := fr.Body.(Transfer); ok {
			payload = tr.Payload
		}
		out, err := AppendFrame(nil, fr.Type, fr.Channel, fr.Body, payload)
		if err != nil {
			return // e.g. a decoded array whose items cannot share one constructor
		}
		if _, err := ReadFrame(bytes.NewReader(out), 1<<20, &buf); err != nil {
			t.Fatalf("re-encoded frame rejected: %v\n% x", err, out)
		}
	})
}

// FuzzDecodeValue checks the value decoder alone, including round-trips of
// whatever it accepts.
func FuzzDecodeValue(f *testing.F) {
	for _, v := range []any{nil, uint32(7), "s", Symbol("y"), []any{int64(1)}, Map{{"k", UUID{}}},
		Array{Code: TypeCodeLong, Items: []any{int64(1)}}, Described{Descriptor: uint64(0x24), Value: []any(nil)}} {
		b, err := Append(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		v, err := d.Value()
		if err != nil {
			return
		}
		out, err := Append(nil, v)
		if err != nil {
			return
		}
		if _, err := NewDecoder(out).Value(); err != nil {
			t.Fatalf("re-encoded value rejected: %v", err)
		}
	})
}
