package amqp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame types.
const (
	FrameAMQP uint8 = 0
	FrameSASL uint8 = 1
)

// MinMaxFrameSize is the smallest max-frame-size a peer may advertise.
const MinMaxFrameSize = 512

// Protocol headers.
var (
	HeaderAMQP = [8]byte{'A', 'M', 'Q', 'P', 0, 1, 0, 0}
	HeaderSASL = [8]byte{'A', 'M', 'Q', 'P', 3, 1, 0, 0}
)

// Frame is one decoded frame. Body is nil for an empty (heartbeat) frame.
type Frame struct {
	Type    uint8
	Channel uint16
	Body    Performative
}

// FrameError is a framing or decoding failure: the connection must be closed
// with Condition.
type FrameError struct {
	Condition Symbol
	Err       error
}

func (e *FrameError) Error() string { return fmt.Sprintf("%s: %v", e.Condition, e.Err) }
func (e *FrameError) Unwrap() error { return e.Err }

// ReadFrame reads one frame from r into buf (grown as needed, never past
// maxSize) and decodes it. A frame larger than maxSize is refused before its
// body is read, so a hostile size cannot cause a large allocation. The
// returned Transfer payload aliases buf and is only valid until the next call.
func ReadFrame(r io.Reader, maxSize uint32, buf *[]byte) (Frame, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	size := binary.BigEndian.Uint32(hdr[0:4])
	doff := int(hdr[4])
	if size < 8 || doff < 2 || uint32(doff*4) > size {
		return Frame{}, &FrameError{ErrFramingError, fmt.Errorf("invalid frame header size=%d doff=%d", size, doff)}
	}
	if size > maxSize {
		return Frame{}, &FrameError{ErrFramingError, fmt.Errorf("frame of %d bytes exceeds max-frame-size %d", size, maxSize)}
	}
	n := int(size) - 8
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	f := Frame{Type: hdr[5], Channel: binary.BigEndian.Uint16(hdr[6:8])}
	body := b[doff*4-8:]
	if len(body) == 0 {
		return f, nil
	}
	p, err := ParseBody(body)
	if err != nil {
		return Frame{}, &FrameError{ErrDecode, err}
	}
	f.Body = p
	return f, nil
}

// ParseBody decodes a frame body: one performative, followed by the payload
// for transfers.
func ParseBody(body []byte) (Performative, error) {
	d := NewDecoder(body)
	v, err := d.Value()
	if err != nil {
		return nil, err
	}
	p, err := DecodePerformative(v)
	if err != nil {
		return nil, err
	}
	if t, ok := p.(Transfer); ok {
		t.Payload = d.Rest()
		return t, nil
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes after %T", d.Len(), p)
	}
	return p, nil
}

// AppendFrame encodes a frame carrying p (and, for transfers, payload) after
// dst. A nil p encodes an empty heartbeat frame.
func AppendFrame(dst []byte, typ uint8, channel uint16, p Performative, payload []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 2, typ, byte(channel>>8), byte(channel))
	if p != nil {
		var err error
		if dst, err = Append(dst, p); err != nil {
			return dst[:start], err
		}
		dst = append(dst, payload...)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst, nil
}

// FrameOverhead returns the bytes a transfer frame spends on everything but
// its payload, so callers can split a message to fit max-frame-size.
func FrameOverhead(t Transfer) int {
	b, err := AppendFrame(nil, FrameAMQP, 0, t, nil)
	if err != nil {
		return 0
	}
	return len(b)
}
