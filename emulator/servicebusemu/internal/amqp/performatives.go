package amqp

import (
	"fmt"
	"time"
)

// Descriptor codes of the composite types this package maps onto structs.
const (
	descOpen           uint64 = 0x10
	descBegin          uint64 = 0x11
	descAttach         uint64 = 0x12
	descFlow           uint64 = 0x13
	descTransfer       uint64 = 0x14
	descDisposition    uint64 = 0x15
	descDetach         uint64 = 0x16
	descEnd            uint64 = 0x17
	descClose          uint64 = 0x18
	descError          uint64 = 0x1d
	descReceived       uint64 = 0x23
	descAccepted       uint64 = 0x24
	descRejected       uint64 = 0x25
	descReleased       uint64 = 0x26
	descModified       uint64 = 0x27
	descSource         uint64 = 0x28
	descTarget         uint64 = 0x29
	descCoordinator    uint64 = 0x30
	descSASLMechanisms uint64 = 0x40
	descSASLInit       uint64 = 0x41
	descSASLChallenge  uint64 = 0x42
	descSASLResponse   uint64 = 0x43
	descSASLOutcome    uint64 = 0x44
)

var symbolicDescriptors = map[Symbol]uint64{
	"amqp:open:list": descOpen, "amqp:begin:list": descBegin, "amqp:attach:list": descAttach,
	"amqp:flow:list": descFlow, "amqp:transfer:list": descTransfer, "amqp:disposition:list": descDisposition,
	"amqp:detach:list": descDetach, "amqp:end:list": descEnd, "amqp:close:list": descClose,
	"amqp:error:list": descError, "amqp:received:list": descReceived, "amqp:accepted:list": descAccepted,
	"amqp:rejected:list": descRejected, "amqp:released:list": descReleased, "amqp:modified:list": descModified,
	"amqp:source:list": descSource, "amqp:target:list": descTarget, "amqp:coordinator:list": descCoordinator,
	"amqp:sasl-mechanisms:list": descSASLMechanisms, "amqp:sasl-init:list": descSASLInit,
	"amqp:sasl-challenge:list": descSASLChallenge, "amqp:sasl-response:list": descSASLResponse,
	"amqp:sasl-outcome:list": descSASLOutcome,
}

// DescriptorCode returns the numeric descriptor of d, translating the
// symbolic form ("amqp:open:list") that the spec also allows.
func DescriptorCode(d any) (uint64, bool) {
	switch d := d.(type) {
	case uint64:
		return d, true
	case Symbol:
		c, ok := symbolicDescriptors[d]
		return c, ok
	}
	return 0, false
}

// Performative is a frame body: a described list with a fixed descriptor.
type Performative interface {
	Descriptor() uint64
	fields() []any
}

// Role values of attach and disposition.
const (
	RoleSender   = false
	RoleReceiver = true
)

// Settle modes.
const (
	SndUnsettled uint8 = 0
	SndSettled   uint8 = 1
	SndMixed     uint8 = 2
	RcvFirst     uint8 = 0
	RcvSecond    uint8 = 1
)

// Open is the open performative.
type Open struct {
	ContainerID         string
	Hostname            string
	MaxFrameSize        uint32 // 0 when absent, meaning 4294967295
	ChannelMax          uint16 // meaningful only if HasChannelMax
	HasChannelMax       bool
	IdleTimeout         time.Duration
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Map
}

// Begin is the begin performative.
type Begin struct {
	RemoteChannel  *uint16
	NextOutgoingID uint32
	IncomingWindow uint32
	OutgoingWindow uint32
	HandleMax      uint32 // 0 when absent, meaning 4294967295
	Properties     Map
}

// Source is the source terminus.
type Source struct {
	Address      string
	Durable      uint32
	ExpiryPolicy Symbol
	Timeout      uint32
	Dynamic      bool
	Filter       Map
	Outcomes     []Symbol
	Capabilities []Symbol
	// DefaultOutcome and DistributionMode are accepted and ignored.
}

// Target is the target terminus. Coordinator marks a transaction
// coordinator target (whose only field is Capabilities).
type Target struct {
	Address      string
	Durable      uint32
	ExpiryPolicy Symbol
	Timeout      uint32
	Dynamic      bool
	Capabilities []Symbol
	Coordinator  bool
}

// Attach is the attach performative.
type Attach struct {
	Name                 string
	Handle               uint32
	Role                 bool
	SndSettleMode        uint8
	RcvSettleMode        uint8
	Source               *Source
	Target               *Target
	InitialDeliveryCount uint32
	MaxMessageSize       uint64
	OfferedCapabilities  []Symbol
	DesiredCapabilities  []Symbol
	Properties           Map
}

// Flow is the flow performative. Link fields are pointers because their
// absence means "this flow is about the session only".
type Flow struct {
	NextIncomingID *uint32
	IncomingWindow uint32
	NextOutgoingID uint32
	OutgoingWindow uint32
	Handle         *uint32
	DeliveryCount  *uint32
	LinkCredit     *uint32
	Available      *uint32
	Drain          bool
	Echo           bool
	Properties     Map
}

// Transfer is the transfer performative plus the payload that follows it in
// the same frame.
type Transfer struct {
	Handle        uint32
	DeliveryID    *uint32
	DeliveryTag   []byte
	MessageFormat *uint32
	Settled       bool
	More          bool
	RcvSettleMode *uint8
	State         DeliveryState
	Resume        bool
	Aborted       bool
	Batchable     bool
	Payload       []byte
}

// Disposition is the disposition performative.
type Disposition struct {
	Role      bool
	First     uint32
	Last      *uint32
	Settled   bool
	State     DeliveryState
	Batchable bool
}

// Detach is the detach performative.
type Detach struct {
	Handle uint32
	Closed bool
	Error  *Error
}

// End is the end performative.
type End struct{ Error *Error }

// Close is the close performative.
type Close struct{ Error *Error }

// SASLMechanisms is the server's list of mechanisms.
type SASLMechanisms struct{ Mechanisms []Symbol }

// SASLInit is the client's mechanism choice.
type SASLInit struct {
	Mechanism       Symbol
	InitialResponse []byte
	Hostname        string
}

// SASLOutcome is the server's verdict; Code 0 is ok.
type SASLOutcome struct {
	Code           uint8
	AdditionalData []byte
}

// DeliveryState is one of Accepted, Rejected, Released, Modified, Received.
type DeliveryState interface {
	Performative
	isState()
}

// Accepted is the accepted outcome.
type Accepted struct{}

// Rejected is the rejected outcome.
type Rejected struct{ Error *Error }

// Released is the released outcome.
type Released struct{}

// Modified is the modified outcome.
type Modified struct {
	DeliveryFailed     bool
	UndeliverableHere  bool
	MessageAnnotations Map
}

// Received is the received (non-terminal) state.
type Received struct {
	SectionNumber uint32
	SectionOffset uint64
}

func (Accepted) isState() {}
func (Rejected) isState() {}
func (Released) isState() {}
func (Modified) isState() {}
func (Received) isState() {}

// Descriptor implementations.
func (Open) Descriptor() uint64           { return descOpen }
func (Begin) Descriptor() uint64          { return descBegin }
func (Attach) Descriptor() uint64         { return descAttach }
func (Flow) Descriptor() uint64           { return descFlow }
func (Transfer) Descriptor() uint64       { return descTransfer }
func (Disposition) Descriptor() uint64    { return descDisposition }
func (Detach) Descriptor() uint64         { return descDetach }
func (End) Descriptor() uint64            { return descEnd }
func (Close) Descriptor() uint64          { return descClose }
func (SASLMechanisms) Descriptor() uint64 { return descSASLMechanisms }
func (SASLInit) Descriptor() uint64       { return descSASLInit }
func (SASLOutcome) Descriptor() uint64    { return descSASLOutcome }
func (Accepted) Descriptor() uint64       { return descAccepted }
func (Rejected) Descriptor() uint64       { return descRejected }
func (Released) Descriptor() uint64       { return descReleased }
func (Modified) Descriptor() uint64       { return descModified }
func (Received) Descriptor() uint64       { return descReceived }

// ---- encoding ----

func opt[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

func optMap(m Map) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

func optSyms(s []Symbol) any {
	if len(s) == 0 {
		return nil
	}
	return s
}

func optBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func ptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func state(s DeliveryState) any {
	if s == nil {
		return nil
	}
	return s
}

func trim(f []any) []any {
	for len(f) > 0 && f[len(f)-1] == nil {
		f = f[:len(f)-1]
	}
	return f
}

func (e *Error) described() Described {
	return Described{Descriptor: descError, Value: trim([]any{e.Condition, opt(e.Description), optMap(e.Info)})}
}

func (o Open) fields() []any {
	var chmax any
	if o.HasChannelMax {
		chmax = o.ChannelMax
	}
	return trim([]any{o.ContainerID, opt(o.Hostname), opt(o.MaxFrameSize), chmax,
		opt(uint32(o.IdleTimeout / time.Millisecond)), nil, nil,
		optSyms(o.OfferedCapabilities), optSyms(o.DesiredCapabilities), optMap(o.Properties)})
}

func (b Begin) fields() []any {
	return trim([]any{ptr(b.RemoteChannel), b.NextOutgoingID, b.IncomingWindow, b.OutgoingWindow,
		opt(b.HandleMax), nil, nil, optMap(b.Properties)})
}

func (s *Source) value() any {
	if s == nil {
		return nil
	}
	return Described{Descriptor: descSource, Value: trim([]any{opt(s.Address), opt(s.Durable), opt(s.ExpiryPolicy),
		opt(s.Timeout), opt(s.Dynamic), nil, nil, optMap(s.Filter), nil, optSyms(s.Outcomes), optSyms(s.Capabilities)})}
}

func (t *Target) value() any {
	if t == nil {
		return nil
	}
	if t.Coordinator {
		return Described{Descriptor: descCoordinator, Value: trim([]any{optSyms(t.Capabilities)})}
	}
	return Described{Descriptor: descTarget, Value: trim([]any{opt(t.Address), opt(t.Durable), opt(t.ExpiryPolicy),
		opt(t.Timeout), opt(t.Dynamic), nil, optSyms(t.Capabilities)})}
}

func (a Attach) fields() []any {
	var idc any
	//lint:ignore S1002 Role is AMQP's boolean role field; naming the constant says which end is meant
	if a.Role == RoleSender {
		idc = a.InitialDeliveryCount
	}
	return trim([]any{a.Name, a.Handle, a.Role, a.SndSettleMode, a.RcvSettleMode, a.Source.value(), a.Target.value(),
		nil, nil, idc, opt(a.MaxMessageSize), optSyms(a.OfferedCapabilities), optSyms(a.DesiredCapabilities), optMap(a.Properties)})
}

func (f Flow) fields() []any {
	return trim([]any{ptr(f.NextIncomingID), f.IncomingWindow, f.NextOutgoingID, f.OutgoingWindow,
		ptr(f.Handle), ptr(f.DeliveryCount), ptr(f.LinkCredit), ptr(f.Available), opt(f.Drain), opt(f.Echo), optMap(f.Properties)})
}

func (t Transfer) fields() []any {
	return trim([]any{t.Handle, ptr(t.DeliveryID), optBytes(t.DeliveryTag), ptr(t.MessageFormat), opt(t.Settled),
		opt(t.More), ptr(t.RcvSettleMode), state(t.State), opt(t.Resume), opt(t.Aborted), opt(t.Batchable)})
}

func (d Disposition) fields() []any {
	return trim([]any{d.Role, d.First, ptr(d.Last), opt(d.Settled), state(d.State), opt(d.Batchable)})
}

func errField(e *Error) any {
	if e == nil {
		return nil
	}
	return e.described()
}

func (d Detach) fields() []any         { return trim([]any{d.Handle, opt(d.Closed), errField(d.Error)}) }
func (e End) fields() []any            { return trim([]any{errField(e.Error)}) }
func (c Close) fields() []any          { return trim([]any{errField(c.Error)}) }
func (s SASLMechanisms) fields() []any { return []any{s.Mechanisms} }
func (s SASLInit) fields() []any {
	return trim([]any{s.Mechanism, optBytes(s.InitialResponse), opt(s.Hostname)})
}
func (s SASLOutcome) fields() []any { return trim([]any{s.Code, optBytes(s.AdditionalData)}) }
func (Accepted) fields() []any      { return nil }
func (Released) fields() []any      { return nil }
func (r Rejected) fields() []any    { return trim([]any{errField(r.Error)}) }
func (m Modified) fields() []any {
	return trim([]any{opt(m.DeliveryFailed), opt(m.UndeliverableHere), optMap(m.MessageAnnotations)})
}
func (r Received) fields() []any { return []any{r.SectionNumber, r.SectionOffset} }

// ---- decoding ----

// fieldList is the decoded list of a composite; missing trailing fields read
// as null.
type fieldList []any

func (f fieldList) at(i int) any {
	if i < len(f) {
		return f[i]
	}
	return nil
}

// reader collects the first type error so decoders read linearly.
type reader struct {
	f    fieldList
	what string
	err  error
}

func (r *reader) fail(i int, want string, got any) {
	if r.err == nil {
		r.err = fmt.Errorf("amqp: %s field %d: want %s, got %T", r.what, i, want, got)
	}
}

func (r *reader) required(i int) bool {
	if r.f.at(i) == nil {
		if r.err == nil {
			r.err = fmt.Errorf("amqp: %s field %d is mandatory", r.what, i)
		}
		return false
	}
	return true
}

func (r *reader) str(i int) string {
	switch v := r.f.at(i).(type) {
	case nil:
	case string:
		return v
	case Symbol:
		return string(v)
	default:
		r.fail(i, "string", v)
	}
	return ""
}

func (r *reader) sym(i int) Symbol {
	switch v := r.f.at(i).(type) {
	case nil:
	case Symbol:
		return v
	case string:
		return Symbol(v)
	default:
		r.fail(i, "symbol", v)
	}
	return ""
}

func (r *reader) boolean(i int) bool {
	switch v := r.f.at(i).(type) {
	case nil:
	case bool:
		return v
	default:
		r.fail(i, "boolean", v)
	}
	return false
}

func (r *reader) u64(i int) (uint64, bool) {
	switch v := r.f.at(i).(type) {
	case nil:
		return 0, false
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	default:
		r.fail(i, "unsigned integer", v)
	}
	return 0, false
}

func (r *reader) u32(i int) uint32 {
	v, _ := r.u32p(i)
	return v
}

func (r *reader) u32p(i int) (uint32, bool) {
	v, ok := r.u64(i)
	if v > 0xffffffff {
		r.fail(i, "uint", v)
		return 0, false
	}
	return uint32(v), ok
}

func (r *reader) optU32(i int) *uint32 {
	v, ok := r.u32p(i)
	if !ok {
		return nil
	}
	return &v
}

func (r *reader) u8(i int) uint8 {
	v, _ := r.u64(i)
	if v > 0xff {
		r.fail(i, "ubyte", v)
	}
	return uint8(v)
}

func (r *reader) bin(i int) []byte {
	switch v := r.f.at(i).(type) {
	case nil:
	case []byte:
		return v
	default:
		r.fail(i, "binary", v)
	}
	return nil
}

func (r *reader) mapField(i int) Map {
	switch v := r.f.at(i).(type) {
	case nil:
	case Map:
		return v
	default:
		r.fail(i, "map", v)
	}
	return nil
}

// syms reads a "multiple" symbol field: a single symbol or an array of them.
func (r *reader) syms(i int) []Symbol {
	switch v := r.f.at(i).(type) {
	case nil:
	case Symbol:
		return []Symbol{v}
	case Array:
		out := make([]Symbol, 0, len(v.Items))
		for _, x := range v.Items {
			s, ok := x.(Symbol)
			if !ok {
				r.fail(i, "symbol array", x)
				return nil
			}
			out = append(out, s)
		}
		return out
	default:
		r.fail(i, "symbols", v)
	}
	return nil
}

func (r *reader) errorField(i int) *Error {
	v := r.f.at(i)
	if v == nil {
		return nil
	}
	e, err := decodeError(v)
	if err != nil && r.err == nil {
		r.err = err
	}
	return e
}

func (r *reader) stateField(i int) DeliveryState {
	v := r.f.at(i)
	if v == nil {
		return nil
	}
	s, err := decodeState(v)
	if err != nil && r.err == nil {
		r.err = err
	}
	return s
}

// composite unpacks a described list with the expected descriptor.
func composite(v any, want uint64, what string) (*reader, error) {
	d, ok := v.(Described)
	if !ok {
		return nil, fmt.Errorf("amqp: %s: want described list, got %T", what, v)
	}
	code, ok := DescriptorCode(d.Descriptor)
	if !ok || code != want {
		return nil, fmt.Errorf("amqp: %s: unexpected descriptor %v", what, d.Descriptor)
	}
	switch l := d.Value.(type) {
	case []any:
		return &reader{f: l, what: what}, nil
	case nil:
		return &reader{what: what}, nil
	}
	return nil, fmt.Errorf("amqp: %s: want list, got %T", what, d.Value)
}

func decodeError(v any) (*Error, error) {
	r, err := composite(v, descError, "error")
	if err != nil {
		return nil, err
	}
	r.required(0)
	e := &Error{Condition: r.sym(0), Description: r.str(1), Info: r.mapField(2)}
	return e, r.err
}

func decodeState(v any) (DeliveryState, error) {
	d, ok := v.(Described)
	if !ok {
		return nil, fmt.Errorf("amqp: delivery state: want described, got %T", v)
	}
	code, _ := DescriptorCode(d.Descriptor)
	switch code {
	case descAccepted:
		_, err := composite(v, code, "accepted")
		return Accepted{}, err
	case descReleased:
		_, err := composite(v, code, "released")
		return Released{}, err
	case descRejected:
		r, err := composite(v, code, "rejected")
		if err != nil {
			return nil, err
		}
		s := Rejected{Error: r.errorField(0)}
		return s, r.err
	case descModified:
		r, err := composite(v, code, "modified")
		if err != nil {
			return nil, err
		}
		s := Modified{DeliveryFailed: r.boolean(0), UndeliverableHere: r.boolean(1), MessageAnnotations: r.mapField(2)}
		return s, r.err
	case descReceived:
		r, err := composite(v, code, "received")
		if err != nil {
			return nil, err
		}
		n, _ := r.u64(1)
		s := Received{SectionNumber: r.u32(0), SectionOffset: n}
		return s, r.err
	}
	return nil, fmt.Errorf("amqp: unknown delivery state %v", d.Descriptor)
}

func decodeSource(v any) (*Source, error) {
	if v == nil {
		return nil, nil
	}
	r, err := composite(v, descSource, "source")
	if err != nil {
		return nil, err
	}
	s := &Source{Address: r.str(0), Durable: r.u32(1), ExpiryPolicy: r.sym(2), Timeout: r.u32(3),
		Dynamic: r.boolean(4), Filter: r.mapField(7), Outcomes: r.syms(9), Capabilities: r.syms(10)}
	return s, r.err
}

func decodeTarget(v any) (*Target, error) {
	if v == nil {
		return nil, nil
	}
	if d, ok := v.(Described); ok {
		if code, _ := DescriptorCode(d.Descriptor); code == descCoordinator {
			r, err := composite(v, descCoordinator, "coordinator")
			if err != nil {
				return nil, err
			}
			t := &Target{Coordinator: true, Capabilities: r.syms(0)}
			return t, r.err
		}
	}
	r, err := composite(v, descTarget, "target")
	if err != nil {
		return nil, err
	}
	t := &Target{Address: r.str(0), Durable: r.u32(1), ExpiryPolicy: r.sym(2), Timeout: r.u32(3),
		Dynamic: r.boolean(4), Capabilities: r.syms(6)}
	return t, r.err
}

// DecodePerformative maps a decoded described value onto its performative
// struct.
func DecodePerformative(v any) (Performative, error) {
	d, ok := v.(Described)
	if !ok {
		return nil, fmt.Errorf("amqp: frame body is %T, not a performative", v)
	}
	code, ok := DescriptorCode(d.Descriptor)
	if !ok {
		return nil, fmt.Errorf("amqp: unknown performative %v", d.Descriptor)
	}
	switch code {
	case descOpen:
		r, err := composite(v, code, "open")
		if err != nil {
			return nil, err
		}
		r.required(0)
		o := Open{ContainerID: r.str(0), Hostname: r.str(1), MaxFrameSize: r.u32(2),
			IdleTimeout:         time.Duration(r.u32(4)) * time.Millisecond,
			OfferedCapabilities: r.syms(7), DesiredCapabilities: r.syms(8), Properties: r.mapField(9)}
		if ch, ok := r.u64(3); ok {
			if ch > 0xffff {
				r.fail(3, "ushort", ch)
			}
			o.ChannelMax, o.HasChannelMax = uint16(ch), true
		}
		return o, r.err
	case descBegin:
		r, err := composite(v, code, "begin")
		if err != nil {
			return nil, err
		}
		r.required(1)
		r.required(2)
		r.required(3)
		b := Begin{NextOutgoingID: r.u32(1), IncomingWindow: r.u32(2), OutgoingWindow: r.u32(3),
			HandleMax: r.u32(4), Properties: r.mapField(7)}
		if ch, ok := r.u64(0); ok {
			if ch > 0xffff {
				r.fail(0, "ushort", ch)
			}
			c := uint16(ch)
			b.RemoteChannel = &c
		}
		return b, r.err
	case descAttach:
		r, err := composite(v, code, "attach")
		if err != nil {
			return nil, err
		}
		r.required(0)
		r.required(1)
		r.required(2)
		a := Attach{Name: r.str(0), Handle: r.u32(1), Role: r.boolean(2), SndSettleMode: SndMixed,
			RcvSettleMode: RcvFirst, InitialDeliveryCount: r.u32(9),
			OfferedCapabilities: r.syms(11), DesiredCapabilities: r.syms(12), Properties: r.mapField(13)}
		if _, ok := r.u64(3); ok {
			a.SndSettleMode = r.u8(3)
		}
		if _, ok := r.u64(4); ok {
			a.RcvSettleMode = r.u8(4)
		}
		a.MaxMessageSize, _ = r.u64(10)
		if r.err != nil {
			return nil, r.err
		}
		if a.Source, err = decodeSource(r.f.at(5)); err != nil {
			return nil, err
		}
		if a.Target, err = decodeTarget(r.f.at(6)); err != nil {
			return nil, err
		}
		return a, nil
	case descFlow:
		r, err := composite(v, code, "flow")
		if err != nil {
			return nil, err
		}
		r.required(1)
		r.required(2)
		r.required(3)
		f := Flow{NextIncomingID: r.optU32(0), IncomingWindow: r.u32(1), NextOutgoingID: r.u32(2),
			OutgoingWindow: r.u32(3), Handle: r.optU32(4), DeliveryCount: r.optU32(5), LinkCredit: r.optU32(6),
			Available: r.optU32(7), Drain: r.boolean(8), Echo: r.boolean(9), Properties: r.mapField(10)}
		return f, r.err
	case descTransfer:
		r, err := composite(v, code, "transfer")
		if err != nil {
			return nil, err
		}
		r.required(0)
		t := Transfer{Handle: r.u32(0), DeliveryID: r.optU32(1), DeliveryTag: r.bin(2), MessageFormat: r.optU32(3),
			Settled: r.boolean(4), More: r.boolean(5), State: r.stateField(7), Resume: r.boolean(8),
			Aborted: r.boolean(9), Batchable: r.boolean(10)}
		if _, ok := r.u64(6); ok {
			m := r.u8(6)
			t.RcvSettleMode = &m
		}
		return t, r.err
	case descDisposition:
		r, err := composite(v, code, "disposition")
		if err != nil {
			return nil, err
		}
		r.required(0)
		r.required(1)
		d := Disposition{Role: r.boolean(0), First: r.u32(1), Last: r.optU32(2), Settled: r.boolean(3),
			State: r.stateField(4), Batchable: r.boolean(5)}
		return d, r.err
	case descDetach:
		r, err := composite(v, code, "detach")
		if err != nil {
			return nil, err
		}
		r.required(0)
		d := Detach{Handle: r.u32(0), Closed: r.boolean(1), Error: r.errorField(2)}
		return d, r.err
	case descEnd:
		r, err := composite(v, code, "end")
		if err != nil {
			return nil, err
		}
		e := End{Error: r.errorField(0)}
		return e, r.err
	case descClose:
		r, err := composite(v, code, "close")
		if err != nil {
			return nil, err
		}
		c := Close{Error: r.errorField(0)}
		return c, r.err
	case descSASLMechanisms:
		r, err := composite(v, code, "sasl-mechanisms")
		if err != nil {
			return nil, err
		}
		s := SASLMechanisms{Mechanisms: r.syms(0)}
		return s, r.err
	case descSASLInit:
		r, err := composite(v, code, "sasl-init")
		if err != nil {
			return nil, err
		}
		r.required(0)
		s := SASLInit{Mechanism: r.sym(0), InitialResponse: r.bin(1), Hostname: r.str(2)}
		return s, r.err
	case descSASLOutcome:
		r, err := composite(v, code, "sasl-outcome")
		if err != nil {
			return nil, err
		}
		s := SASLOutcome{Code: r.u8(0), AdditionalData: r.bin(1)}
		return s, r.err
	case descAccepted, descRejected, descReleased, descModified, descReceived:
		return decodeState(v)
	}
	return nil, fmt.Errorf("amqp: unsupported performative 0x%x", code)
}
