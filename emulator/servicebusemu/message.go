package servicebusemu

import (
	"fmt"
	"maps"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// Annotation names of the Service Bus message model.
const (
	annSequenceNumber  = "x-opt-sequence-number"
	annEnqueuedTime    = "x-opt-enqueued-time"
	annLockedUntil     = "x-opt-locked-until"
	annEnqueueSequence = "x-opt-enqueue-sequence-number"
	annMessageState    = "x-opt-message-state"
	annScheduledTime   = "x-opt-scheduled-enqueue-time"
	annLockToken       = "x-opt-lock-token"
)

// batchFormat is the message-format of an azservicebus batch: the body is a
// list of data sections, each one a complete encoded message.
const batchFormat = 0x80013700

// encode renders d as the SDKs expect to receive it. The annotation types
// are exact (long, timestamp, int, uuid): the Go SDK type-asserts them and
// panics on any other width. withLock adds the lock annotations; peeked
// messages carry none.
func (d delivery) encode(withLock bool) ([]byte, error) {
	m := *d.m
	h := goamqp.MessageHeader{Durable: true, Priority: 4}
	if d.m.Header != nil {
		h = *d.m.Header
	}
	h.DeliveryCount = d.deliveryCount
	if h.TTL == 0 && !d.expires.IsZero() {
		// The entity's default TTL applied: report it, so that clients can
		// compute ExpiresAt as with the real service.
		h.TTL = d.expires.Sub(d.enqueued)
	}
	m.Header = nil // encoded below, with every field explicit
	if m.Properties == nil {
		// The Go SDK only reads the delivery count when properties exist.
		m.Properties = &goamqp.MessageProperties{}
	}
	ann := make(goamqp.Annotations, len(d.m.Annotations)+5)
	maps.Copy(ann, d.m.Annotations)
	ann[annSequenceNumber] = d.seq
	ann[annEnqueueSequence] = d.seq
	ann[annEnqueuedTime] = d.enqueued.UTC()
	ann[annMessageState] = int32(d.state)
	if d.state == stateScheduled {
		ann[annScheduledTime] = d.scheduled.UTC()
	}
	m.DeliveryAnnotations = nil
	if withLock && d.locked {
		ann[annLockedUntil] = d.lockedUntil.UTC()
		m.DeliveryAnnotations = goamqp.Annotations{annLockToken: goamqp.UUID(d.lockToken)}
	}
	m.Annotations = ann
	rest, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode message %d: %w", d.seq, err)
	}
	b, err := appendHeader(make([]byte, 0, len(rest)+32), h)
	if err != nil {
		return nil, fmt.Errorf("encode message %d: %w", d.seq, err)
	}
	return append(b, rest...), nil
}

// appendHeader encodes the header section with every field present. go-amqp
// omits a zero delivery-count, and rhea-based clients then report the
// delivery count as undefined instead of 0.
func appendHeader(dst []byte, h goamqp.MessageHeader) ([]byte, error) {
	var ttl any
	if h.TTL > 0 {
		ttl = uint32(min(h.TTL.Milliseconds(), 1<<32-1))
	}
	return amqp.Append(dst, amqp.Described{Descriptor: uint64(0x70), Value: []any{
		h.Durable, h.Priority, ttl, h.FirstAcquirer, h.DeliveryCount,
	}})
}

// netOrder converts a lock token to the .NET GUID byte order that Service
// Bus uses for delivery tags (the first three fields little-endian). The
// conversion is its own inverse.
func netOrder(u amqp.UUID) []byte {
	b := u
	b[0], b[1], b[2], b[3] = u[3], u[2], u[1], u[0]
	b[4], b[5] = u[5], u[4]
	b[6], b[7] = u[7], u[6]
	return b[:]
}

// decodeIncoming turns a transfer payload into the messages it carries,
// unpacking batches.
func decodeIncoming(format uint32, payload []byte) ([]*goamqp.Message, error) {
	var env goamqp.Message
	if err := env.UnmarshalBinary(payload); err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	if format != batchFormat {
		env.Format = 0
		return []*goamqp.Message{&env}, nil
	}
	out := make([]*goamqp.Message, 0, len(env.Data))
	for i, data := range env.Data {
		m := new(goamqp.Message)
		if err := m.UnmarshalBinary(data); err != nil {
			return nil, fmt.Errorf("decode batch message %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}
