package amqp

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Encoder appends AMQP values to a byte slice, always choosing the smallest
// encoding of the exact AMQP type that the Go type names (uint32 → uint,
// int32 → int, int64 → long, time.Time → timestamp, Symbol → symbol).
type Encoder struct {
	B []byte
}

// Append encodes v after dst and returns the extended slice.
func Append(dst []byte, v any) ([]byte, error) {
	e := Encoder{B: dst}
	err := e.Value(v)
	return e.B, err
}

func (e *Encoder) u8(c byte) { e.B = append(e.B, c) }

func (e *Encoder) u32(n uint32) { e.B = binary.BigEndian.AppendUint32(e.B, n) }

func (e *Encoder) u64(n uint64) { e.B = binary.BigEndian.AppendUint64(e.B, n) }

// Value encodes v. Supported Go types are those the Decoder produces plus a
// few typed slices that become arrays ([]Symbol, []int64, []UUID, []time.Time,
// []string).
func (e *Encoder) Value(v any) error {
	switch v := v.(type) {
	case nil:
		e.u8(TypeCodeNull)
	case bool:
		if v {
			e.u8(TypeCodeTrue)
		} else {
			e.u8(TypeCodeFalse)
		}
	case uint8:
		e.B = append(e.B, TypeCodeUbyte, v)
	case uint16:
		e.u8(TypeCodeUshort)
		e.B = binary.BigEndian.AppendUint16(e.B, v)
	case uint32:
		switch {
		case v == 0:
			e.u8(TypeCodeUint0)
		case v < 256:
			e.B = append(e.B, TypeCodeSmallUint, byte(v))
		default:
			e.u8(TypeCodeUint)
			e.u32(v)
		}
	case uint64:
		switch {
		case v == 0:
			e.u8(TypeCodeUlong0)
		case v < 256:
			e.B = append(e.B, TypeCodeSmallUlong, byte(v))
		default:
			e.u8(TypeCodeUlong)
			e.u64(v)
		}
	case int8:
		e.B = append(e.B, TypeCodeByte, byte(v))
	case int16:
		e.u8(TypeCodeShort)
		e.B = binary.BigEndian.AppendUint16(e.B, uint16(v))
	case int32:
		if v >= -128 && v <= 127 {
			e.B = append(e.B, TypeCodeSmallint, byte(int8(v)))
		} else {
			e.u8(TypeCodeInt)
			e.u32(uint32(v))
		}
	case int64:
		if v >= -128 && v <= 127 {
			e.B = append(e.B, TypeCodeSmalllong, byte(int8(v)))
		} else {
			e.u8(TypeCodeLong)
			e.u64(uint64(v))
		}
	case float32:
		e.u8(TypeCodeFloat)
		e.u32(math.Float32bits(v))
	case float64:
		e.u8(TypeCodeDouble)
		e.u64(math.Float64bits(v))
	case Char:
		e.u8(TypeCodeChar)
		e.u32(uint32(v))
	case Decimal:
		switch len(v) {
		case 4:
			e.u8(TypeCodeDecimal32)
		case 8:
			e.u8(TypeCodeDecimal64)
		case 16:
			e.u8(TypeCodeDecimal128)
		default:
			return fmt.Errorf("amqp: decimal of %d bytes", len(v))
		}
		e.B = append(e.B, v...)
	case time.Time:
		e.u8(TypeCodeTimestamp)
		e.u64(uint64(v.UnixMilli()))
	case UUID:
		e.u8(TypeCodeUUID)
		e.B = append(e.B, v[:]...)
	case []byte:
		e.variable(TypeCodeVbin8, TypeCodeVbin32, v)
	case string:
		e.variable(TypeCodeStr8, TypeCodeStr32, []byte(v))
	case Symbol:
		e.variable(TypeCodeSym8, TypeCodeSym32, []byte(v))
	case []any:
		return e.list(v)
	case Map:
		return e.mapValue(v)
	case Array:
		return e.array(v)
	case []Symbol:
		items := make([]any, len(v))
		for i := range v {
			items[i] = v[i]
		}
		return e.array(Array{Code: TypeCodeSym32, Items: items})
	case []string:
		items := make([]any, len(v))
		for i := range v {
			items[i] = v[i]
		}
		return e.array(Array{Code: TypeCodeStr32, Items: items})
	case []int64:
		items := make([]any, len(v))
		for i := range v {
			items[i] = v[i]
		}
		return e.array(Array{Code: TypeCodeLong, Items: items})
	case []UUID:
		items := make([]any, len(v))
		for i := range v {
			items[i] = v[i]
		}
		return e.array(Array{Code: TypeCodeUUID, Items: items})
	case []time.Time:
		items := make([]any, len(v))
		for i := range v {
			items[i] = v[i]
		}
		return e.array(Array{Code: TypeCodeTimestamp, Items: items})
	case Described:
		e.u8(TypeCodeDescribed)
		if err := e.Value(v.Descriptor); err != nil {
			return err
		}
		return e.Value(v.Value)
	case *Error:
		if v == nil {
			e.u8(TypeCodeNull)
			return nil
		}
		return e.Value(v.described())
	case Performative:
		return e.Value(Described{Descriptor: v.Descriptor(), Value: v.fields()})
	default:
		return fmt.Errorf("amqp: cannot encode %T", v)
	}
	return nil
}

func (e *Encoder) variable(small, wide byte, b []byte) {
	if len(b) < 256 {
		e.B = append(e.B, small, byte(len(b)))
	} else {
		e.u8(wide)
		e.u32(uint32(len(b)))
	}
	e.B = append(e.B, b...)
}

// compound writes a list/map/array body: it reserves a 32-bit size and count,
// writes the elements, then patches the header (or shrinks it to 8-bit).
func (e *Encoder) compound(small, wide byte, count int, body func() error) error {
	start := len(e.B)
	e.B = append(e.B, wide, 0, 0, 0, 0, 0, 0, 0, 0)
	if err := body(); err != nil {
		return err
	}
	content := len(e.B) - start - 9
	if content+1 < 256 && count < 256 {
		e.B[start] = small
		e.B[start+1] = byte(content + 1)
		e.B[start+2] = byte(count)
		copy(e.B[start+3:], e.B[start+9:])
		e.B = e.B[:len(e.B)-6]
		return nil
	}
	binary.BigEndian.PutUint32(e.B[start+1:], uint32(content+4))
	binary.BigEndian.PutUint32(e.B[start+5:], uint32(count))
	return nil
}

func (e *Encoder) list(v []any) error {
	if len(v) == 0 {
		e.u8(TypeCodeList0)
		return nil
	}
	return e.compound(TypeCodeList8, TypeCodeList32, len(v), func() error {
		for _, x := range v {
			if err := e.Value(x); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *Encoder) mapValue(m Map) error {
	return e.compound(TypeCodeMap8, TypeCodeMap32, 2*len(m), func() error {
		for _, kv := range m {
			if err := e.Value(kv.Key); err != nil {
				return err
			}
			if err := e.Value(kv.Value); err != nil {
				return err
			}
		}
		return nil
	})
}

// array writes every element with the wide form of its constructor, since an
// array shares one constructor and compact forms (uint0, smalllong) differ
// in width per value.
func (e *Encoder) array(a Array) error {
	code := a.Code
	if code == 0 {
		if len(a.Items) == 0 {
			code = TypeCodeNull
		} else {
			probe, err := Append(nil, a.Items[0])
			if err != nil {
				return err
			}
			code = wideCode(probe[0])
		}
	}
	return e.compound(TypeCodeArray8, TypeCodeArray32, len(a.Items), func() error {
		e.u8(code)
		for _, x := range a.Items {
			if err := e.element(code, x); err != nil {
				return err
			}
		}
		return nil
	})
}

func wideCode(c byte) byte {
	switch c {
	case TypeCodeTrue, TypeCodeFalse:
		return TypeCodeBool
	case TypeCodeUint0, TypeCodeSmallUint:
		return TypeCodeUint
	case TypeCodeUlong0, TypeCodeSmallUlong:
		return TypeCodeUlong
	case TypeCodeSmallint:
		return TypeCodeInt
	case TypeCodeSmalllong:
		return TypeCodeLong
	case TypeCodeVbin8:
		return TypeCodeVbin32
	case TypeCodeStr8:
		return TypeCodeStr32
	case TypeCodeSym8:
		return TypeCodeSym32
	case TypeCodeList0, TypeCodeList8:
		return TypeCodeList32
	case TypeCodeMap8:
		return TypeCodeMap32
	case TypeCodeArray8:
		return TypeCodeArray32
	}
	return c
}

// element writes x without its constructor, in the fixed form code.
func (e *Encoder) element(code byte, x any) error {
	mismatch := func() error { return fmt.Errorf("amqp: array of 0x%02x cannot hold %T", code, x) }
	switch code {
	case TypeCodeNull:
		if x != nil {
			return mismatch()
		}
	case TypeCodeBool:
		b, ok := x.(bool)
		if !ok {
			return mismatch()
		}
		if b {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case TypeCodeUint:
		n, ok := x.(uint32)
		if !ok {
			return mismatch()
		}
		e.u32(n)
	case TypeCodeUlong:
		n, ok := x.(uint64)
		if !ok {
			return mismatch()
		}
		e.u64(n)
	case TypeCodeInt:
		n, ok := x.(int32)
		if !ok {
			return mismatch()
		}
		e.u32(uint32(n))
	case TypeCodeLong:
		n, ok := x.(int64)
		if !ok {
			return mismatch()
		}
		e.u64(uint64(n))
	case TypeCodeVbin32, TypeCodeStr32, TypeCodeSym32:
		var b []byte
		switch s := x.(type) {
		case []byte:
			b = s
		case string:
			b = []byte(s)
		case Symbol:
			b = []byte(s)
		default:
			return mismatch()
		}
		e.u32(uint32(len(b)))
		e.B = append(e.B, b...)
	case TypeCodeList32, TypeCodeMap32, TypeCodeArray32:
		var sub Encoder
		if err := sub.Value(x); err != nil {
			return err
		}
		if len(sub.B) == 0 || wideCode(sub.B[0]) != code {
			return mismatch()
		}
		e.B = append(e.B, widen(sub.B)...)
	default:
		// Fixed-width types: encode normally and drop the constructor.
		var sub Encoder
		if err := sub.Value(x); err != nil {
			return err
		}
		if sub.B[0] != code {
			return mismatch()
		}
		e.B = append(e.B, sub.B[1:]...)
	}
	return nil
}

// widen rewrites a compact list/map/array encoding into its 32-bit form,
// without the constructor byte.
func widen(b []byte) []byte {
	switch b[0] {
	case TypeCodeList0:
		return []byte{0, 0, 0, 4, 0, 0, 0, 0}
	case TypeCodeList8, TypeCodeMap8, TypeCodeArray8:
		size, count := int(b[1]), uint32(b[2])
		out := binary.BigEndian.AppendUint32(nil, uint32(size-1+4))
		out = binary.BigEndian.AppendUint32(out, count)
		return append(out, b[3:]...)
	}
	return b[1:]
}
