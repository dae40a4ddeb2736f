package servicebus

import (
	"fmt"
	"io"
	"sync"
	"time"

	"appreg/emulator/servicebus/internal/amqp"
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
		desc = fmt.Sprintf("%T%+v payload=%dB", v, v, n)
	case amqp.SASLInit:
		desc = fmt.Sprintf("SASLInit{Mechanism:%s Hostname:%s}", v.Mechanism, v.Hostname)
	case nil:
		desc = "empty"
	default:
		desc = fmt.Sprintf("%T%+v", v, v)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%s %s %s ch=%d %s\n", t.now().UTC().Format("15:04:05.000"), remote, dir, ch, desc)
}
