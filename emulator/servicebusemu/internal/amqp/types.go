package amqp

import (
	"encoding/hex"
	"fmt"
)

// Symbol is an AMQP symbol (ASCII name), distinct from a string on the wire.
type Symbol string

// UUID is an AMQP uuid in RFC 4122 byte order.
type UUID [16]byte

// String formats u as 8-4-4-4-12 hex.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// Char is an AMQP char (a UTF-32 code point).
type Char rune

// Decimal holds an AMQP decimal32/64/128 undecoded; the emulator never does
// arithmetic on them, it only has to skip them safely.
type Decimal []byte

// Described is a described type whose descriptor is not one of the
// performatives or sections this package maps onto structs.
type Described struct {
	Descriptor any // uint64 or Symbol
	Value      any
}

// KV is one entry of a Map.
type KV struct {
	Key, Value any
}

// Map is an AMQP map kept as an ordered list of pairs. A Go map cannot hold
// arbitrary decoded keys (lists are not comparable), and order keeps encoding
// deterministic.
type Map []KV

// Get returns the value for the first key equal to key. Symbol and string
// keys are compared by text, since peers differ in which one they send.
func (m Map) Get(key string) (any, bool) {
	for _, kv := range m {
		switch k := kv.Key.(type) {
		case Symbol:
			if string(k) == key {
				return kv.Value, true
			}
		case string:
			if k == key {
				return kv.Value, true
			}
		}
	}
	return nil, false
}

// Array is an AMQP array: every element shares one constructor. Elements are
// decoded to the same Go types as single values. Code is the element
// constructor (for example TypeCodeLong); when encoding, zero means "infer from
// the first element".
type Array struct {
	Code  byte
	Items []any
}

// Error is the AMQP error type carried by detach, end, close and rejected.
type Error struct {
	Condition   Symbol
	Description string
	Info        Map
}

func (e *Error) Error() string {
	if e.Description == "" {
		return string(e.Condition)
	}
	return fmt.Sprintf("%s: %s", e.Condition, e.Description)
}

// Standard error conditions used by the emulator.
const (
	ErrInternal          Symbol = "amqp:internal-error"
	ErrNotFound          Symbol = "amqp:not-found"
	ErrUnauthorized      Symbol = "amqp:unauthorized-access"
	ErrDecode            Symbol = "amqp:decode-error"
	ErrResourceLimit     Symbol = "amqp:resource-limit-exceeded"
	ErrNotAllowed        Symbol = "amqp:not-allowed"
	ErrInvalidField      Symbol = "amqp:invalid-field"
	ErrNotImplemented    Symbol = "amqp:not-implemented"
	ErrFramingError      Symbol = "amqp:connection:framing-error"
	ErrConnForced        Symbol = "amqp:connection:forced"
	ErrDetachForced      Symbol = "amqp:link:detach-forced"
	ErrMessageSize       Symbol = "amqp:link:message-size-exceeded"
	ErrUnattachedHandle  Symbol = "amqp:session:unattached-handle"
	ErrWindowViolation   Symbol = "amqp:session:window-violation"
	ErrHandleInUse       Symbol = "amqp:session:handle-in-use"
	ErrTransferLimit     Symbol = "amqp:link:transfer-limit-exceeded"
	ErrSessionLockLost   Symbol = "com.microsoft:session-lock-lost"
	ErrMessageLockLost   Symbol = "com.microsoft:message-lock-lost"
	ErrTimeout           Symbol = "com.microsoft:timeout"
	ErrEntityDisabled    Symbol = "com.microsoft:entity-disabled"
	ErrServerBusy        Symbol = "com.microsoft:server-busy"
	ErrArgument          Symbol = "com.microsoft:argument-error"
	ErrPrecondition      Symbol = "amqp:precondition-failed"
	ErrIllegalState      Symbol = "amqp:illegal-state"
	ErrDeadLetterOutcome Symbol = "com.microsoft:dead-letter"
)

// Type codes (constructors) of the AMQP 1.0 type system.
const (
	TypeCodeDescribed  byte = 0x00
	TypeCodeNull       byte = 0x40
	TypeCodeBool       byte = 0x56
	TypeCodeTrue       byte = 0x41
	TypeCodeFalse      byte = 0x42
	TypeCodeUbyte      byte = 0x50
	TypeCodeUshort     byte = 0x60
	TypeCodeUint       byte = 0x70
	TypeCodeSmallUint  byte = 0x52
	TypeCodeUint0      byte = 0x43
	TypeCodeUlong      byte = 0x80
	TypeCodeSmallUlong byte = 0x53
	TypeCodeUlong0     byte = 0x44
	TypeCodeByte       byte = 0x51
	TypeCodeShort      byte = 0x61
	TypeCodeInt        byte = 0x71
	TypeCodeSmallint   byte = 0x54
	TypeCodeLong       byte = 0x81
	TypeCodeSmalllong  byte = 0x55
	TypeCodeFloat      byte = 0x72
	TypeCodeDouble     byte = 0x82
	TypeCodeDecimal32  byte = 0x74
	TypeCodeDecimal64  byte = 0x84
	TypeCodeDecimal128 byte = 0x94
	TypeCodeChar       byte = 0x73
	TypeCodeTimestamp  byte = 0x83
	TypeCodeUUID       byte = 0x98
	TypeCodeVbin8      byte = 0xa0
	TypeCodeVbin32     byte = 0xb0
	TypeCodeStr8       byte = 0xa1
	TypeCodeStr32      byte = 0xb1
	TypeCodeSym8       byte = 0xa3
	TypeCodeSym32      byte = 0xb3
	TypeCodeList0      byte = 0x45
	TypeCodeList8      byte = 0xc0
	TypeCodeList32     byte = 0xd0
	TypeCodeMap8       byte = 0xc1
	TypeCodeMap32      byte = 0xd1
	TypeCodeArray8     byte = 0xe0
	TypeCodeArray32    byte = 0xf0
)
