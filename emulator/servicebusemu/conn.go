package servicebusemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// Limits the emulator advertises and enforces per connection.
const (
	maxFrameSize      = 65536
	channelMax        = 255
	handleMax         = 255
	sessionWindow     = 5000
	senderCredit      = 1000 // credit granted to client senders, in messages
	maxMessageSize    = 256 * 1024
	maxPendingReplies = 256
	maxPartialBytes   = 4 << 20  // unfinished incoming transfers, per connection
	maxReplyBytes     = 16 << 20 // replies the client has not taken yet, per connection
	handshakeTimeout  = 30 * time.Second
)

type linkKind int

const (
	linkSend    linkKind = iota // client sends messages to a queue or topic
	linkRecv                    // client receives from a queue, subscription or DLQ
	linkRequest                 // client sends $cbs or $management requests
	linkReply                   // client receives $cbs or $management replies
)

// outgoing is a message (or reply) being transferred to the client, possibly
// across several frames when the session window closes mid-way.
type outgoing struct {
	payload    []byte
	off        int
	deliveryID uint32
	tag        []byte
	settled    bool
	started    bool
}

type link struct {
	c         *conn
	kind      linkKind
	name      string
	handle    uint32
	sess      *session
	entity    *entity // linkSend, linkRecv, and $management requests
	claim     claim   // $management requests: the CBS token that covers them
	cbs       bool    // linkRequest to $cbs
	address   string  // linkReply: the reply-to address it serves
	peekLock  bool
	presettle bool // we send settled transfers
	detached  bool // we sent detach and await the client's

	// Session receivers: the session whose lock the link holds, or the
	// attach still waiting for one.
	sbSession *sbSession
	accept    *pendingAccept

	// We send (linkRecv, linkReply).
	credit        uint32
	deliveryCount uint32
	drain         bool
	queue         []*outgoing
	replies       [][]byte // encoded replies awaiting credit

	// We receive (linkSend, linkRequest).
	creditGiven uint32
	inActive    bool
	inID        uint32
	inFormat    uint32
	inSettled   bool
	inOversize  bool
	inBuf       []byte
}

// pendingAccept is a session receiver's attach that waits for a session.
type pendingAccept struct {
	resp     amqp.Attach
	id       *string // nil: next available session
	plain    bool    // the client sent the filter undescribed (rhea)
	deadline time.Time
	timer    *time.Timer
}

const (
	sessionFilterName   = "com.microsoft:session-filter"
	sessionFilterCode   = uint64(0x137000000c)
	defaultAcceptWindow = 60 * time.Second // the service's operation timeout
)

type session struct {
	ch                   uint16
	nextIncomingID       uint32
	incomingWindow       uint32
	nextOutgoingID       uint32
	remoteIncomingWindow uint32
	nextDeliveryID       uint32
	links                map[uint32]*link
	unsettled            map[uint32]*pendingLock
}

// pendingLock is an unsettled PeekLock delivery.
type pendingLock struct {
	entity *entity
	token  amqp.UUID
}

type frameIn struct {
	f   amqp.Frame
	err error
}

// conn is one client connection. After the handshake, one goroutine (loop)
// owns all of its state; a reader goroutine only decodes frames, and other
// goroutines reach it through wake and ctrl.
type conn struct {
	srv        *Server
	nc         net.Conn
	log        *slog.Logger
	w          *bufio.Writer
	scratch    []byte
	frames     chan frameIn
	wakeCh     chan struct{}
	ctrl       chan func()
	done       chan struct{}
	remoteMax  uint32
	remoteIdle time.Duration
	lastWrite  time.Time
	lastRead   time.Time
	sessions   map[uint16]*session
	replyLinks map[string]*link
	claims     map[string]claim // authorized audience paths (lower case)
	hostname   string           // the namespace host the client opened the connection for
	partial    int              // bytes held in unfinished incoming transfers
	replyBytes int              // bytes of replies waiting for link credit
	started    chan struct{}    // closed when loop starts taking control calls
}

// connError ends the connection with an AMQP close carrying Error.
type connError struct{ amqpErr *amqp.Error }

func (e connError) Error() string { return e.amqpErr.Error() }

func newConnError(cond amqp.Symbol, format string, args ...any) connError {
	return connError{&amqp.Error{Condition: cond, Description: fmt.Sprintf(format, args...)}}
}

// wake is how the broker tells a waiting receiver link that messages (or a
// session) became available. Waiters are registered per link, not per
// connection, so that one link giving up does not silence its siblings.
func (l *link) wake() { l.c.wake() }

func (c *conn) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

func (c *conn) serve() {
	defer close(c.done)
	defer c.nc.Close()
	defer func() {
		// A bug must cost one connection, not every client of the emulator.
		if v := recover(); v != nil {
			c.srv.panics.Add(1)
			c.log.Error("connection panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	_ = c.nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := c.handshake(); err != nil {
		var ce connError
		if errors.As(err, &ce) {
			c.writeFrame(0, amqp.Close{Error: ce.amqpErr})
			c.w.Flush()
		}
		c.log.Debug("handshake failed", "err", err)
		return
	}
	_ = c.nc.SetDeadline(time.Time{})
	go c.readLoop()
	err := c.loop()
	c.teardown()
	var ce connError
	switch {
	case errors.As(err, &ce):
		c.log.Info("closing connection", "condition", ce.amqpErr.Condition, "description", ce.amqpErr.Description)
		c.writeFrame(0, amqp.Close{Error: ce.amqpErr})
		c.w.Flush()
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
		c.log.Debug("connection ended", "err", err)
	}
}

func (c *conn) readHeader() ([8]byte, error) {
	var h [8]byte
	_, err := io.ReadFull(c.nc, h[:])
	return h, err
}

// handshake negotiates the protocol headers, SASL and open.
func (c *conn) handshake() error {
	h, err := c.readHeader()
	if err != nil {
		return err
	}
	if h == amqp.HeaderSASL {
		if err := c.sasl(); err != nil {
			return err
		}
		if h, err = c.readHeader(); err != nil {
			return err
		}
	}
	if h != amqp.HeaderAMQP {
		// Answer with the header we do support, then hang up (AMQP 2.2).
		c.w.Write(amqp.HeaderSASL[:])
		c.w.Flush()
		return fmt.Errorf("unsupported protocol header % x", h)
	}
	c.w.Write(amqp.HeaderAMQP[:])
	if err := c.w.Flush(); err != nil {
		return err
	}
	var buf []byte
	f, err := amqp.ReadFrame(c.nc, maxFrameSize, &buf)
	if err != nil {
		return frameErr(err)
	}
	c.trace("<-", f.Channel, f.Body)
	open, ok := f.Body.(amqp.Open)
	if !ok || f.Type != amqp.FrameAMQP {
		return newConnError(amqp.ErrNotAllowed, "expected open, got %T", f.Body)
	}
	c.remoteMax = open.MaxFrameSize
	if c.remoteMax == 0 || c.remoteMax > maxFrameSize*16 {
		c.remoteMax = maxFrameSize * 16
	}
	if c.remoteMax < amqp.MinMaxFrameSize {
		return newConnError(amqp.ErrInvalidField, "max-frame-size %d below %d", open.MaxFrameSize, amqp.MinMaxFrameSize)
	}
	c.remoteIdle = open.IdleTimeout
	c.hostname = open.Hostname
	c.writeFrame(0, amqp.Open{
		ContainerID: "azemu-servicebus", Hostname: open.Hostname, MaxFrameSize: maxFrameSize,
		ChannelMax: channelMax, HasChannelMax: true, IdleTimeout: c.srv.idleTimeout,
	})
	return c.w.Flush()
}

// sasl runs the SASL exchange. The key never travels in SASL (it is proven
// later through CBS), so every offered mechanism succeeds.
func (c *conn) sasl() error {
	c.w.Write(amqp.HeaderSASL[:])
	c.writeFrameType(amqp.FrameSASL, 0, amqp.SASLMechanisms{Mechanisms: []amqp.Symbol{"ANONYMOUS", "MSSBCBS", "EXTERNAL"}}, nil)
	if err := c.w.Flush(); err != nil {
		return err
	}
	var buf []byte
	f, err := amqp.ReadFrame(c.nc, amqp.MinMaxFrameSize*8, &buf)
	if err != nil {
		return frameErr(err)
	}
	c.trace("<-", f.Channel, f.Body)
	init, ok := f.Body.(amqp.SASLInit)
	if !ok || f.Type != amqp.FrameSASL {
		return fmt.Errorf("expected sasl-init, got %T", f.Body)
	}
	code := uint8(0)
	switch init.Mechanism {
	case "ANONYMOUS", "MSSBCBS", "EXTERNAL":
	default:
		code = 1 // auth: mechanism not offered
	}
	c.writeFrameType(amqp.FrameSASL, 0, amqp.SASLOutcome{Code: code}, nil)
	if err := c.w.Flush(); err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("unsupported SASL mechanism %q", init.Mechanism)
	}
	return nil
}

func frameErr(err error) error {
	var fe *amqp.FrameError
	if errors.As(err, &fe) {
		return connError{&amqp.Error{Condition: fe.Condition, Description: fe.Err.Error()}}
	}
	return err
}

func (c *conn) readLoop() {
	var buf []byte
	for {
		f, err := amqp.ReadFrame(c.nc, maxFrameSize, &buf)
		if t, ok := f.Body.(amqp.Transfer); ok && err == nil {
			// The payload aliases buf, which the next read reuses.
			t.Payload = append([]byte(nil), t.Payload...)
			f.Body = t
		}
		select {
		case c.frames <- frameIn{f, err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *conn) loop() error {
	tick := c.srv.idleTimeout / 4
	if c.remoteIdle > 0 && c.remoteIdle/4 < tick {
		// Checked every quarter, sent once half has passed: the gap between
		// our frames stays under three quarters of the client's timeout.
		tick = c.remoteIdle / 4
	}
	tick = max(tick, 10*time.Millisecond)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	c.lastRead = time.Now()
	close(c.started)
	for {
		select {
		case in := <-c.frames:
			if err := c.onFrame(in); err != nil {
				return err
			}
			// Handle what is already buffered before flushing, so replies to
			// a burst go out in few writes.
		drain:
			for range 64 {
				select {
				case in := <-c.frames:
					if err := c.onFrame(in); err != nil {
						return err
					}
				default:
					break drain
				}
			}
		case <-c.wakeCh:
			c.pumpAll()
		case fn := <-c.ctrl:
			fn()
		case now := <-ticker.C:
			if c.srv.idleTimeout > 0 && now.Sub(c.lastRead) > c.srv.idleTimeout {
				return newConnError(amqp.ErrResourceLimit, "no frames received for %v", c.srv.idleTimeout)
			}
			if c.remoteIdle > 0 && now.Sub(c.lastWrite) >= c.remoteIdle/2 {
				c.writeEmpty()
			}
		case <-c.srv.quit:
			return newConnError(amqp.ErrConnForced, "the emulator is shutting down")
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
}

func (c *conn) flush() error {
	if c.w.Buffered() == 0 {
		return nil
	}
	c.lastWrite = time.Now()
	return c.w.Flush()
}

func (c *conn) onFrame(in frameIn) error {
	if in.err != nil {
		return frameErr(in.err)
	}
	c.lastRead = time.Now()
	f := in.f
	if f.Body == nil {
		return nil // heartbeat
	}
	c.trace("<-", f.Channel, f.Body)
	if f.Type != amqp.FrameAMQP {
		return newConnError(amqp.ErrFramingError, "frame type %d after open", f.Type)
	}
	switch p := f.Body.(type) {
	case amqp.Begin:
		return c.onBegin(f.Channel, p)
	case amqp.Close:
		c.writeFrame(0, amqp.Close{})
		c.flush()
		return io.EOF
	case amqp.Open:
		return newConnError(amqp.ErrIllegalState, "second open")
	}
	s := c.sessions[f.Channel]
	if s == nil {
		return newConnError(amqp.ErrNotAllowed, "frame %T on channel %d without a session", f.Body, f.Channel)
	}
	switch p := f.Body.(type) {
	case amqp.Attach:
		return c.onAttach(s, p)
	case amqp.Flow:
		return c.onFlow(s, p)
	case amqp.Transfer:
		return c.onTransfer(s, p)
	case amqp.Disposition:
		return c.onDisposition(s, p)
	case amqp.Detach:
		return c.onDetach(s, p)
	case amqp.End:
		c.endSession(s)
		c.writeFrame(s.ch, amqp.End{})
		return nil
	}
	return newConnError(amqp.ErrNotAllowed, "unexpected %T", f.Body)
}

func (c *conn) onBegin(ch uint16, b amqp.Begin) error {
	if b.RemoteChannel != nil {
		return newConnError(amqp.ErrNotAllowed, "begin with remote-channel: the emulator never begins sessions")
	}
	if ch > channelMax {
		return newConnError(amqp.ErrFramingError, "channel %d above channel-max %d", ch, channelMax)
	}
	if _, dup := c.sessions[ch]; dup {
		return newConnError(amqp.ErrNotAllowed, "channel %d already has a session", ch)
	}
	s := &session{ch: ch, nextIncomingID: b.NextOutgoingID, incomingWindow: sessionWindow,
		remoteIncomingWindow: b.IncomingWindow, links: map[uint32]*link{}, unsettled: map[uint32]*pendingLock{}}
	c.sessions[ch] = s
	remote := ch
	c.writeFrame(ch, amqp.Begin{RemoteChannel: &remote, NextOutgoingID: 0, IncomingWindow: sessionWindow,
		OutgoingWindow: sessionWindow, HandleMax: handleMax})
	return nil
}

// endSession forgets a session, its links and its unsettled deliveries.
// PeekLock locks survive, as on the real service: they expire on their own.
func (c *conn) endSession(s *session) {
	for _, l := range s.links {
		c.dropLink(l)
	}
	delete(c.sessions, s.ch)
}

func (c *conn) dropLink(l *link) {
	delete(l.sess.links, l.handle)
	if l.inActive {
		c.partial -= len(l.inBuf)
		l.inActive, l.inBuf = false, nil
	}
	switch l.kind {
	case linkRecv:
		if l.entity == nil {
			return // refused at attach
		}
		c.srv.broker.cancelWait(l.entity, l)
		if l.accept != nil && l.accept.timer != nil {
			l.accept.timer.Stop()
		}
		if l.sbSession != nil {
			c.srv.broker.releaseSession(l.entity, l.sbSession, l, l)
		}
		// Messages taken for this link but never transferred go back.
		for _, o := range l.queue {
			if !o.started {
				if p := l.sess.unsettled[o.deliveryID]; p != nil {
					_ = c.srv.broker.settle(p.entity, p.token, settlement{op: opRelease})
					delete(l.sess.unsettled, o.deliveryID)
				}
			}
		}
		l.queue = nil
	case linkReply:
		if c.replyLinks[l.address] == l {
			delete(c.replyLinks, l.address)
		}
		for _, b := range l.replies {
			c.replyBytes -= len(b)
		}
		l.replies = nil
	}
}

func (c *conn) teardown() {
	for _, s := range c.sessions {
		c.endSession(s)
	}
}

// ---- output ----

func (c *conn) writeFrame(ch uint16, p amqp.Performative) {
	c.writeFrameType(amqp.FrameAMQP, ch, p, nil)
}

func (c *conn) writeTransfer(ch uint16, t amqp.Transfer, payload []byte) {
	c.writeFrameType(amqp.FrameAMQP, ch, t, payload)
}

func (c *conn) writeFrameType(typ uint8, ch uint16, p amqp.Performative, payload []byte) {
	if t, ok := p.(amqp.Transfer); ok && c.srv.tracer != nil {
		t.Payload = payload // traced as its length only
		c.trace("->", ch, t)
	} else {
		c.trace("->", ch, p)
	}
	var err error
	c.scratch, err = amqp.AppendFrame(c.scratch[:0], typ, ch, p, payload)
	if err != nil {
		c.log.Error("encode frame", "performative", fmt.Sprintf("%T", p), "err", err)
		return
	}
	c.w.Write(c.scratch)
	if cap(c.scratch) > 4*maxFrameSize {
		c.scratch = nil
	}
}

func (c *conn) writeEmpty() {
	c.w.Write([]byte{0, 0, 0, 8, 2, 0, 0, 0})
}

func (c *conn) trace(dir string, ch uint16, p amqp.Performative) {
	if c.srv.tracer == nil {
		return
	}
	c.srv.tracer.frame(c.nc.RemoteAddr().String(), dir, ch, p)
}
