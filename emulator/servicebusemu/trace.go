package servicebusemu

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// tracer writes one line per frame. Payloads are never printed: they carry
// message bodies and CBS tokens.
type tracer struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func (t *tracer) frame(remote, dir string, ch uint16, p amqp.Performative) {
	var desc string
	switch v := p.(type) {
	case amqp.Transfer:
		n := len(v.Payload)
		v.Payload = nil
		desc = fmt.Sprintf("%T%s payload=%dB", v, describe(v), n)
	case amqp.SASLInit:
		desc = fmt.Sprintf("SASLInit{Mechanism:%s Hostname:%s}", v.Mechanism, v.Hostname)
	case nil:
		desc = "empty"
	default:
		desc = fmt.Sprintf("%T%s", v, describe(v))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%s %s %s ch=%d %s\n", t.now().UTC().Format("15:04:05.000"), remote, dir, ch, desc)
}

// describe prints a performative's fields, following pointers so that
// optional fields show their values rather than addresses.
func describe(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return fmt.Sprintf("%+v", v)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := range rv.NumField() {
		f := rv.Field(i)
		if f.IsZero() {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(' ')
		}
		for f.Kind() == reflect.Pointer && !f.IsNil() {
			f = f.Elem()
		}
		val := f.Interface()
		if f.Kind() == reflect.Struct {
			val = describe(val)
		}
		fmt.Fprintf(&b, "%s:%v", rv.Type().Field(i).Name, val)
	}
	b.WriteByte('}')
	return b.String()
}
