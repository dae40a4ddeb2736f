package amqp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// maxDepth bounds how deeply lists, maps, arrays and described values may nest,
// so hostile input cannot exhaust the stack.
const maxDepth = 32

// ErrShort reports input that ends inside a value.
var ErrShort = errors.New("amqp: truncated value")

// Decoder reads AMQP values from a byte slice. Every length it reads is checked
// against the bytes that remain before anything is allocated.
type Decoder struct {
	b     []byte
	pos   int
	depth int
}

// NewDecoder returns a Decoder over b. It does not copy b; decoded binary
// values are copies, so b may be reused afterwards.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Len reports the number of unread bytes.
func (d *Decoder) Len() int { return len(d.b) - d.pos }

// Rest returns the unread bytes without copying.
func (d *Decoder) Rest() []byte { return d.b[d.pos:] }

func (d *Decoder) need(n int) ([]byte, error) {
	if n < 0 || n > d.Len() {
		return nil, ErrShort
	}
	s := d.b[d.pos : d.pos+n]
	d.pos += n
	return s, nil
}

func (d *Decoder) byte1() (byte, error) {
	if d.pos >= len(d.b) {
		return 0, ErrShort
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

// Value decodes the next value.
func (d *Decoder) Value() (any, error) {
	code, err := d.byte1()
	if err != nil {
		return nil, err
	}
	if code == TypeCodeDescribed {
		return d.described()
	}
	return d.valueOf(code)
}

func (d *Decoder) described() (any, error) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		return nil, errors.New("amqp: values nested too deeply")
	}
	desc, err := d.Value()
	if err != nil {
		return nil, err
	}
	switch desc.(type) {
	case uint64, Symbol:
	default:
		return nil, fmt.Errorf("amqp: descriptor of type %T", desc)
	}
	v, err := d.Value()
	if err != nil {
		return nil, err
	}
	return Described{Descriptor: desc, Value: v}, nil
}

// valueOf decodes the value whose constructor code has been read.
func (d *Decoder) valueOf(code byte) (any, error) {
	switch code {
	case TypeCodeNull:
		return nil, nil
	case TypeCodeTrue:
		return true, nil
	case TypeCodeFalse:
		return false, nil
	case TypeCodeBool:
		c, err := d.byte1()
		if err != nil {
			return nil, err
		}
		switch c {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, fmt.Errorf("amqp: invalid boolean 0x%02x", c)
	case TypeCodeUbyte:
		return d.byte1()
	case TypeCodeByte:
		c, err := d.byte1()
		return int8(c), err
	case TypeCodeUshort:
		b, err := d.need(2)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.Uint16(b), nil
	case TypeCodeShort:
		b, err := d.need(2)
		if err != nil {
			return nil, err
		}
		return int16(binary.BigEndian.Uint16(b)), nil
	case TypeCodeUint0:
		return uint32(0), nil
	case TypeCodeSmallUint:
		c, err := d.byte1()
		return uint32(c), err
	case TypeCodeUint:
		b, err := d.need(4)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.Uint32(b), nil
	case TypeCodeSmallint:
		c, err := d.byte1()
		return int32(int8(c)), err
	case TypeCodeInt:
		b, err := d.need(4)
		if err != nil {
			return nil, err
		}
		return int32(binary.BigEndian.Uint32(b)), nil
	case TypeCodeUlong0:
		return uint64(0), nil
	case TypeCodeSmallUlong:
		c, err := d.byte1()
		return uint64(c), err
	case TypeCodeUlong:
		b, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.Uint64(b), nil
	case TypeCodeSmalllong:
		c, err := d.byte1()
		return int64(int8(c)), err
	case TypeCodeLong:
		b, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	case TypeCodeFloat:
		b, err := d.need(4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
	case TypeCodeDouble:
		b, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case TypeCodeDecimal32, TypeCodeDecimal64, TypeCodeDecimal128:
		n := map[byte]int{TypeCodeDecimal32: 4, TypeCodeDecimal64: 8, TypeCodeDecimal128: 16}[code]
		b, err := d.need(n)
		if err != nil {
			return nil, err
		}
		return Decimal(append([]byte(nil), b...)), nil
	case TypeCodeChar:
		b, err := d.need(4)
		if err != nil {
			return nil, err
		}
		return Char(binary.BigEndian.Uint32(b)), nil
	case TypeCodeTimestamp:
		b, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return time.UnixMilli(int64(binary.BigEndian.Uint64(b))).UTC(), nil
	case TypeCodeUUID:
		b, err := d.need(16)
		if err != nil {
			return nil, err
		}
		var u UUID
		copy(u[:], b)
		return u, nil
	case TypeCodeVbin8, TypeCodeVbin32:
		b, err := d.variable(code == TypeCodeVbin32)
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case TypeCodeStr8, TypeCodeStr32:
		b, err := d.variable(code == TypeCodeStr32)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return nil, errors.New("amqp: string is not valid UTF-8")
		}
		return string(b), nil
	case TypeCodeSym8, TypeCodeSym32:
		b, err := d.variable(code == TypeCodeSym32)
		if err != nil {
			return nil, err
		}
		return Symbol(b), nil
	case TypeCodeList0:
		return []any(nil), nil
	case TypeCodeList8, TypeCodeList32:
		return d.list(code == TypeCodeList32)
	case TypeCodeMap8, TypeCodeMap32:
		return d.mapValue(code == TypeCodeMap32)
	case TypeCodeArray8, TypeCodeArray32:
		return d.array(code == TypeCodeArray32)
	}
	return nil, fmt.Errorf("amqp: unknown type code 0x%02x", code)
}

// variable reads a size-prefixed byte run (vbin, str, sym).
func (d *Decoder) variable(wide bool) ([]byte, error) {
	n, err := d.size(wide)
	if err != nil {
		return nil, err
	}
	return d.need(n)
}

func (d *Decoder) size(wide bool) (int, error) {
	if !wide {
		c, err := d.byte1()
		return int(c), err
	}
	b, err := d.need(4)
	if err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(b)
	if int64(n) > int64(d.Len()) {
		return 0, ErrShort
	}
	return int(n), nil
}

// compound reads the size and count of a list, map or array and returns a
// decoder limited to its bytes. The count is checked against those bytes, so
// no allocation exceeds the input's own size.
func (d *Decoder) compound(wide bool) (*Decoder, int, error) {
	size, err := d.size(wide)
	if err != nil {
		return nil, 0, err
	}
	body, err := d.need(size)
	if err != nil {
		return nil, 0, err
	}
	sub := &Decoder{b: body, depth: d.depth + 1}
	if sub.depth > maxDepth {
		return nil, 0, errors.New("amqp: values nested too deeply")
	}
	count, err := sub.size(wide)
	if err != nil {
		return nil, 0, err
	}
	if wide && size < 4 || !wide && size < 1 {
		return nil, 0, ErrShort
	}
	if count > sub.Len() {
		return nil, 0, fmt.Errorf("amqp: count %d exceeds %d remaining bytes", count, sub.Len())
	}
	return sub, count, nil
}

func (d *Decoder) list(wide bool) (any, error) {
	sub, count, err := d.compound(wide)
	if err != nil {
		return nil, err
	}
	out := make([]any, count)
	for i := range out {
		if out[i], err = sub.Value(); err != nil {
			return nil, err
		}
	}
	if sub.Len() != 0 {
		return nil, errors.New("amqp: list size and count disagree")
	}
	return out, nil
}

func (d *Decoder) mapValue(wide bool) (any, error) {
	sub, count, err := d.compound(wide)
	if err != nil {
		return nil, err
	}
	if count%2 != 0 {
		return nil, errors.New("amqp: map with an odd element count")
	}
	out := make(Map, count/2)
	for i := range out {
		if out[i].Key, err = sub.Value(); err != nil {
			return nil, err
		}
		if out[i].Value, err = sub.Value(); err != nil {
			return nil, err
		}
	}
	if sub.Len() != 0 {
		return nil, errors.New("amqp: map size and count disagree")
	}
	return out, nil
}

func (d *Decoder) array(wide bool) (any, error) {
	sub, count, err := d.compound(wide)
	if err != nil {
		return nil, err
	}
	code, err := sub.byte1()
	if err != nil {
		return nil, err
	}
	var desc any
	if code == TypeCodeDescribed {
		if desc, err = sub.Value(); err != nil {
			return nil, err
		}
		if code, err = sub.byte1(); err != nil {
			return nil, err
		}
	}
	// Zero-width elements (null, true, uint0, list0...) would let a tiny
	// array claim billions of items; the count was already capped by the
	// array's byte size in compound.
	out := Array{Code: code, Items: make([]any, count)}
	for i := range out.Items {
		v, err := sub.valueOf(code)
		if err != nil {
			return nil, err
		}
		if desc != nil {
			v = Described{Descriptor: desc, Value: v}
		}
		out.Items[i] = v
	}
	if sub.Len() != 0 {
		return nil, errors.New("amqp: array size and count disagree")
	}
	return out, nil
}
