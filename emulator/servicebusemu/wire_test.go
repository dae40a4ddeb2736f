package servicebusemu

import (
	"fmt"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// sections decodes an encoded message into its sections, keyed by
// descriptor, with this package's own codec: an independent check of the
// AMQP types on the wire.
func sections(tb testing.TB, b []byte) map[uint64]any {
	tb.Helper()
	out := map[uint64]any{}
	d := amqp.NewDecoder(b)
	for d.Len() > 0 {
		v, err := d.Value()
		if err != nil {
			tb.Fatal(err)
		}
		desc, ok := v.(amqp.Described)
		if !ok {
			tb.Fatalf("section %T", v)
		}
		out[desc.Descriptor.(uint64)] = desc.Value
	}
	return out
}

func typeOf(m amqp.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return "absent"
	}
	return fmt.Sprintf("%T", v)
}

// TestWireTypes pins the AMQP types the SDKs type-assert on: a wrong width
// here panics the Go SDK or breaks rhea-based clients.
func TestWireTypes(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000).UTC()
	d := delivery{
		m:   &goamqp.Message{Data: [][]byte{[]byte("x")}, Annotations: goamqp.Annotations{"x-opt-partition-key": "p"}},
		seq: 7, enqueued: now, state: stateActive, deliveryCount: 0, locked: true,
		lockToken: amqp.UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, lockedUntil: now.Add(time.Minute),
		expires: now.Add(time.Hour),
	}
	b, err := d.encode(true)
	if err != nil {
		t.Fatal(err)
	}
	s := sections(t, b)

	header := s[0x70].([]any)
	if len(header) != 5 || fmt.Sprintf("%T", header[4]) != "uint32" || header[4] != uint32(0) {
		t.Errorf("header %v: delivery-count must be present as uint even when 0", header)
	}
	if header[2] != uint32(time.Hour/time.Millisecond) {
		t.Errorf("header ttl %v", header[2])
	}
	ann := s[0x72].(amqp.Map)
	for key, want := range map[string]string{
		annSequenceNumber: "int64", annEnqueueSequence: "int64", annEnqueuedTime: "time.Time",
		annLockedUntil: "time.Time", annMessageState: "int32", "x-opt-partition-key": "string",
	} {
		if got := typeOf(ann, key); got != want {
			t.Errorf("annotation %s is %s, want %s", key, got, want)
		}
	}
	for _, kv := range ann {
		if _, ok := kv.Key.(amqp.Symbol); !ok {
			t.Errorf("annotation key %v is %T, want symbol", kv.Key, kv.Key)
		}
	}
	if got := typeOf(s[0x71].(amqp.Map), annLockToken); got != "amqp.UUID" {
		t.Errorf("x-opt-lock-token is %s", got)
	}
	if _, ok := s[0x73]; !ok {
		t.Error("no properties section: the Go SDK then ignores the delivery count")
	}

	tag := netOrder(d.lockToken)
	want := []byte{4, 3, 2, 1, 6, 5, 8, 7, 9, 10, 11, 12, 13, 14, 15, 16}
	if fmt.Sprint(tag) != fmt.Sprint(want) {
		t.Errorf("delivery tag % x, want .NET order % x", tag, want)
	}

	peeked, err := d.encode(false)
	if err != nil {
		t.Fatal(err)
	}
	ps := sections(t, peeked)
	if _, ok := ps[0x71]; ok {
		t.Error("peeked message carries a lock token")
	}
	if got := typeOf(ps[0x72].(amqp.Map), annLockedUntil); got != "absent" {
		t.Errorf("peeked message has x-opt-locked-until (%s)", got)
	}
}

func TestReplyStatusTypes(t *testing.T) {
	for name, m := range map[string]*goamqp.Message{
		"cbs":        statusReply(202, "Accepted", ""),
		"management": okReply(map[string]any{"sequence-numbers": []int64{1}, "expirations": []time.Time{time.Now()}}),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			s := sections(t, b)
			props := s[0x74].(amqp.Map)
			key := "status-code"
			if name == "management" {
				key = "statusCode"
			}
			if got := typeOf(props, key); got != "int32" {
				t.Fatalf("%s is %s, want int32", key, got)
			}
			if name == "management" {
				body := s[0x77].(amqp.Map)
				// Arrays, not lists; go-amqp may pick smalllong elements.
				for key, want := range map[string]string{"sequence-numbers": "int64", "expirations": "time.Time"} {
					v, _ := body.Get(key)
					a, ok := v.(amqp.Array)
					if !ok || len(a.Items) != 1 || fmt.Sprintf("%T", a.Items[0]) != want {
						t.Errorf("%s is %#v, want an array of %s", key, v, want)
					}
				}
			}
		})
	}
}
