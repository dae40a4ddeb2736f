package amqp

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/google/go-cmp/cmp"
)

func u32p(v uint32) *uint32 { return &v }

func TestValueRoundTrip(t *testing.T) {
	ts := time.UnixMilli(1700000000123).UTC()
	tests := []struct {
		name string
		in   any
	}{
		{"null", nil},
		{"true", true},
		{"false", false},
		{"ubyte", uint8(7)},
		{"ushort", uint16(65000)},
		{"uint0", uint32(0)},
		{"smalluint", uint32(200)},
		{"uint", uint32(70000)},
		{"ulong0", uint64(0)},
		{"smallulong", uint64(3)},
		{"ulong", uint64(1 << 40)},
		{"byte", int8(-3)},
		{"short", int16(-300)},
		{"smallint", int32(-5)},
		{"int", int32(200000)},
		{"smalllong", int64(100)},
		{"long", int64(-1 << 40)},
		{"float", float32(1.5)},
		{"double", 2.25},
		{"char", Char('é')},
		{"timestamp", ts},
		{"uuid", UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{"vbin8", []byte{1, 2, 3}},
		{"vbin32", bytes.Repeat([]byte{9}, 300)},
		{"str8", "héllo"},
		{"str32", strings.Repeat("x", 300)},
		{"sym8", Symbol("amqp:accepted:list")},
		{"sym32", Symbol(strings.Repeat("s", 256))},
		{"list", []any{uint32(1), "two", nil, []any{true}}},
		{"list32", []any{strings.Repeat("y", 260), int64(1)}},
		{"map", Map{{Symbol("k"), "v"}, {"n", int32(-1)}}},
		{"array long", Array{Code: TypeCodeLong, Items: []any{int64(1), int64(-2)}}},
		{"array uuid", Array{Code: TypeCodeUUID, Items: []any{UUID{1}, UUID{2}}}},
		{"array timestamp", Array{Code: TypeCodeTimestamp, Items: []any{ts}}},
		{"array sym", Array{Code: TypeCodeSym32, Items: []any{Symbol("a"), Symbol("b")}}},
		{"array list", Array{Code: TypeCodeList32, Items: []any{[]any{uint32(1)}, []any{"x"}}}},
		{"described", Described{Descriptor: uint64(0x137000000c), Value: "session"}},
		{"described sym", Described{Descriptor: Symbol("apache.org:selector-filter:string"), Value: "1=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Append(nil, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			d := NewDecoder(b)
			got, err := d.Value()
			if err != nil {
				t.Fatalf("decode % x: %v", b, err)
			}
			if d.Len() != 0 {
				t.Fatalf("%d bytes left", d.Len())
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTypedSlicesAreArrays checks, through go-amqp's own decoder, that the
// typed slices the SDK asserts on ([]int64, []time.Time, []UUID) are encoded
// as AMQP arrays, not lists.
func TestTypedSlicesAreArrays(t *testing.T) {
	ts := time.UnixMilli(1700000000000).UTC()
	value := Map{
		{"sequence-numbers", []int64{1, 2}},
		{"expirations", []time.Time{ts}},
		{"lock-tokens", []UUID{{1}}},
	}
	body := []byte{0x00, 0x53, 0x77} // amqp-value section
	body, err := Append(body, value)
	if err != nil {
		t.Fatal(err)
	}
	var m goamqp.Message
	if err := m.UnmarshalBinary(body); err != nil {
		t.Fatal(err)
	}
	got, ok := m.Value.(map[string]any)
	if !ok {
		t.Fatalf("value is %T", m.Value)
	}
	if _, ok := got["sequence-numbers"].([]int64); !ok {
		t.Errorf("sequence-numbers is %T", got["sequence-numbers"])
	}
	if v, ok := got["expirations"].([]time.Time); !ok || !v[0].Equal(ts) {
		t.Errorf("expirations is %T %v", got["expirations"], got["expirations"])
	}
	if _, ok := got["lock-tokens"].([]goamqp.UUID); !ok {
		t.Errorf("lock-tokens is %T", got["lock-tokens"])
	}
}

func TestFrameRoundTrip(t *testing.T) {
	ch := uint16(3)
	tests := []struct {
		name string
		typ  uint8
		p    Performative
	}{
		{"open", FrameAMQP, Open{ContainerID: "c", Hostname: "h:1", MaxFrameSize: 65536, ChannelMax: 7, HasChannelMax: true,
			IdleTimeout: 30 * time.Second, OfferedCapabilities: []Symbol{"x"}, Properties: Map{{Symbol("product"), "p"}}}},
		{"begin", FrameAMQP, Begin{RemoteChannel: &ch, NextOutgoingID: 1, IncomingWindow: 5000, OutgoingWindow: 5000, HandleMax: 255}},
		{"attach", FrameAMQP, Attach{Name: "l", Handle: 1, Role: RoleReceiver, SndSettleMode: SndMixed, RcvSettleMode: RcvSecond,
			Source: &Source{Address: "q", Filter: Map{{Symbol("com.microsoft:session-filter"), Described{Descriptor: uint64(0x137000000c), Value: nil}}}},
			Target: &Target{Address: "r"}, MaxMessageSize: 1 << 20, Properties: Map{{Symbol("com.microsoft:timeout"), uint32(5)}}}},
		{"attach sender", FrameAMQP, Attach{Name: "s", Handle: 0, Role: RoleSender, SndSettleMode: SndUnsettled, RcvSettleMode: RcvFirst,
			Target: &Target{Address: "q"}, InitialDeliveryCount: 9}},
		{"attach coordinator", FrameAMQP, Attach{Name: "txn", Handle: 4, Role: RoleSender, SndSettleMode: SndMixed, RcvSettleMode: RcvFirst,
			Source: &Source{Address: "s"}, Target: &Target{Coordinator: true, Capabilities: []Symbol{"amqp:local-transactions"}}}},
		{"flow", FrameAMQP, Flow{NextIncomingID: u32p(4), IncomingWindow: 10, NextOutgoingID: 2, OutgoingWindow: 3,
			Handle: u32p(1), DeliveryCount: u32p(5), LinkCredit: u32p(100), Drain: true, Echo: true}},
		{"transfer", FrameAMQP, Transfer{Handle: 1, DeliveryID: u32p(7), DeliveryTag: []byte{1, 2}, MessageFormat: u32p(0x80013700),
			More: true, State: Accepted{}, Payload: []byte{0x00, 0x53, 0x75, 0xa0, 0x01, 0x41}}},
		{"disposition", FrameAMQP, Disposition{Role: RoleReceiver, First: 3, Last: u32p(9), Settled: true,
			State: Rejected{Error: &Error{Condition: ErrDeadLetterOutcome, Info: Map{{Symbol("DeadLetterReason"), "r"}}}}}},
		{"disposition modified", FrameAMQP, Disposition{Role: RoleReceiver, First: 1,
			State: Modified{DeliveryFailed: true, UndeliverableHere: true, MessageAnnotations: Map{{Symbol("a"), int64(1)}}}}},
		{"disposition released", FrameAMQP, Disposition{Role: RoleSender, First: 1, State: Released{}}},
		{"detach", FrameAMQP, Detach{Handle: 2, Closed: true, Error: &Error{Condition: ErrDetachForced, Description: "bye"}}},
		{"end", FrameAMQP, End{}},
		{"close", FrameAMQP, Close{Error: &Error{Condition: ErrFramingError}}},
		{"sasl-mechanisms", FrameSASL, SASLMechanisms{Mechanisms: []Symbol{"ANONYMOUS", "MSSBCBS"}}},
		{"sasl-init", FrameSASL, SASLInit{Mechanism: "ANONYMOUS", InitialResponse: []byte("anonymous"), Hostname: "h"}},
		{"sasl-outcome", FrameSASL, SASLOutcome{Code: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var payload []byte
			if tr, ok := tt.p.(Transfer); ok {
				payload = tr.Payload
			}
			b, err := AppendFrame(nil, tt.typ, 5, tt.p, payload)
			if err != nil {
				t.Fatal(err)
			}
			var buf []byte
			f, err := ReadFrame(bytes.NewReader(b), 1<<20, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != tt.typ || f.Channel != 5 {
				t.Fatalf("type %d channel %d", f.Type, f.Channel)
			}
			if diff := cmp.Diff(tt.p, f.Body); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostileInput(t *testing.T) {
	be32 := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	deep := bytes.Repeat([]byte{0x00, 0x53, 0x01}, 100)
	deep = append(deep, 0x40)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown code", []byte{0xff}},
		{"str32 huge size", append([]byte{0xb1}, be32(0xfffffff0)...)},
		{"list32 huge count", append(append([]byte{0xd0}, be32(8)...), append(be32(0xffffffff), 0x40, 0x40, 0x40, 0x40)...)},
		{"array of nulls huge count", append(append([]byte{0xf0}, be32(5)...), append(be32(0x7fffffff), 0x40)...)},
		{"map odd count", []byte{0xc1, 0x02, 0x01, 0x40}},
		{"deep nesting", deep},
		{"bad utf8", []byte{0xa1, 0x01, 0xff}},
		{"bad descriptor", []byte{0x00, 0x41, 0x40}},
		{"list size lies", []byte{0xc0, 0x05, 0x01, 0x40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewDecoder(tt.in).Value(); err == nil {
				t.Fatalf("decoded % x without error", tt.in)
			}
		})
	}
}

func TestReadFrameLimits(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"oversize", []byte{0, 1, 0, 0, 2, 0, 0, 0}},
		{"size below header", []byte{0, 0, 0, 4, 2, 0, 0, 0}},
		{"doff too small", []byte{0, 0, 0, 8, 1, 0, 0, 0}},
		{"doff past size", []byte{0, 0, 0, 8, 4, 0, 0, 0}},
		{"not a performative", []byte{0, 0, 0, 9, 2, 0, 0, 0, 0x40}},
		{"trailing bytes", []byte{0, 0, 0, 15, 2, 0, 0, 0, 0x00, 0x53, 0x17, 0x45, 0x40, 0x40, 0x40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf []byte
			if _, err := ReadFrame(bytes.NewReader(tt.in), 4096, &buf); err == nil {
				t.Fatal("no error")
			}
			if cap(buf) > 4096 {
				t.Fatalf("allocated %d bytes", cap(buf))
			}
		})
	}
}

func TestEmptyFrameIsHeartbeat(t *testing.T) {
	b, err := AppendFrame(nil, FrameAMQP, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, []byte{0, 0, 0, 8, 2, 0, 0, 0}) {
		t.Fatalf("% x", b)
	}
	var buf []byte
	f, err := ReadFrame(bytes.NewReader(b), 512, &buf)
	if err != nil || f.Body != nil {
		t.Fatalf("%v %v", f, err)
	}
}
