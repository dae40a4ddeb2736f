package servicebus

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebus/internal/amqp"
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
	claims     map[string]bool // authorized audience paths (lower case)
	partial    int             // bytes held in unfinished incoming transfers
	replyBytes int             // bytes of replies waiting for link credit
	started    chan struct{}   // closed when loop starts taking control calls
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

// ---- attach / detach ----

func isManagement(addr string) bool {
	return strings.HasSuffix(strings.ToLower(addr), "/$management")
}

func (c *conn) onAttach(s *session, a amqp.Attach) error {
	if a.Handle > handleMax {
		return newConnError(amqp.ErrFramingError, "handle %d above handle-max %d", a.Handle, handleMax)
	}
	if old, dup := s.links[a.Handle]; dup && !old.detached {
		return newConnError(amqp.ErrHandleInUse, "handle %d is in use", a.Handle)
	}
	l := &link{c: c, name: a.Name, handle: a.Handle, sess: s}
	resp := amqp.Attach{Name: a.Name, Handle: a.Handle, Role: !a.Role, SndSettleMode: a.SndSettleMode,
		RcvSettleMode: a.RcvSettleMode, Source: a.Source, Target: a.Target}
	var refuse *amqp.Error
	if a.Role == amqp.RoleReceiver {
		src := ""
		if a.Source != nil {
			src = a.Source.Address
		}
		switch {
		case src == "$cbs" || isManagement(src):
			// Replies are routed by the request's reply-to, which names the
			// link's target address (go-amqp) or, when it has none, the link
			// itself (rhea).
			l.kind = linkReply
			l.address = a.Name
			if a.Target != nil && a.Target.Address != "" {
				l.address = a.Target.Address
			}
			l.presettle = a.SndSettleMode == amqp.SndSettled
		default:
			l.kind = linkRecv
			l.peekLock = a.SndSettleMode != amqp.SndSettled
			l.presettle = !l.peekLock
			l.entity, refuse = c.resolve(src, src)
			if refuse == nil {
				l.accept, refuse = sessionAttach(a, l.entity)
			}
		}
	} else {
		tgt := ""
		if a.Target != nil {
			tgt = a.Target.Address
		}
		l.kind = linkSend
		switch {
		case a.Target != nil && a.Target.Coordinator:
			refuse = &amqp.Error{Condition: amqp.ErrNotImplemented, Description: "Transactions are not supported by this emulator."}
		case tgt == "$cbs":
			l.kind, l.cbs = linkRequest, true
		case isManagement(tgt):
			l.kind = linkRequest
			l.entity, refuse = c.resolve(tgt[:len(tgt)-len("/$management")], tgt)
		default:
			l.entity, refuse = c.resolve(tgt, tgt)
			if refuse == nil && l.entity.kind != kindQueue && l.entity.kind != kindTopic {
				refuse = &amqp.Error{Condition: amqp.ErrNotAllowed, Description: "cannot send to " + l.entity.name}
			}
		}
		resp.MaxMessageSize = maxMessageSize
	}
	if refuse != nil {
		if a.Role == amqp.RoleReceiver {
			resp.Source = nil
		} else {
			resp.Target = nil
		}
		c.writeFrame(s.ch, resp)
		c.writeFrame(s.ch, amqp.Detach{Handle: a.Handle, Closed: true, Error: refuse})
		l.detached = true
		s.links[a.Handle] = l
		return nil
	}
	s.links[a.Handle] = l
	if l.accept != nil {
		l.accept.resp = resp
		c.tryAccept(l)
		return nil
	}
	c.writeFrame(s.ch, resp)
	switch l.kind {
	case linkSend, linkRequest:
		l.creditGiven = senderCredit
		c.writeLinkFlow(l, false)
	case linkReply:
		c.replyLinks[l.address] = l
	}
	return nil
}

// sessionAttach checks a receiver's session filter against the entity and
// returns the accept to wait for, if the link is a session receiver.
func sessionAttach(a amqp.Attach, e *entity) (*pendingAccept, *amqp.Error) {
	var filter any
	var has bool
	if a.Source != nil {
		filter, has = a.Source.Filter.Get(sessionFilterName)
	}
	switch {
	case !has && e.props.RequiresSession:
		return nil, &amqp.Error{Condition: amqp.ErrNotAllowed, Description: fmt.Sprintf(
			"It is not possible for an entity that requires sessions to create a non-sessionful message receiver: %s", e.name)}
	case !has:
		return nil, nil
	case !e.props.RequiresSession:
		return nil, &amqp.Error{Condition: amqp.ErrNotAllowed, Description: fmt.Sprintf(
			"It is not possible for a session receiver to receive from %s, which does not require sessions.", e.name)}
	}
	p := &pendingAccept{deadline: time.Now().Add(defaultAcceptWindow)}
	if d, ok := filter.(amqp.Described); ok {
		filter = d.Value
	} else {
		p.plain = true
	}
	switch v := filter.(type) {
	case nil:
	case string:
		p.id = &v
	default:
		return nil, &amqp.Error{Condition: amqp.ErrInvalidField, Description: fmt.Sprintf("session filter of type %T", v)}
	}
	if v, ok := a.Properties.Get("com.microsoft:timeout"); ok {
		if ms, ok := toInt64(v); ok && ms >= 0 {
			p.deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
		}
	}
	return p, nil
}

// tryAccept locks a session for a waiting session receiver and answers its
// attach, refuses it, or leaves it waiting (woken by the broker or a timer).
func (c *conn) tryAccept(l *link) {
	p := l.accept
	ss, err := c.srv.broker.acceptSession(l.entity, p.id, l, l)
	var refuse *amqp.Error
	switch {
	case err == nil:
		l.accept, l.sbSession = nil, ss
		if p.timer != nil {
			p.timer.Stop()
		}
		resp := p.resp
		src := *resp.Source
		// Echo the filter in the shape it came in, with the session's id:
		// go-amqp expects a described value, rhea a plain string.
		var fv any = amqp.Described{Descriptor: sessionFilterCode, Value: ss.id}
		if p.plain {
			fv = ss.id
		}
		src.Filter = amqp.Map{{Key: amqp.Symbol(sessionFilterName), Value: fv}}
		resp.Source = &src
		resp.Properties = amqp.Map{{Key: amqp.Symbol("com.microsoft:locked-until-utc"), Value: dotnetTicks(c.srv.broker.sessionLockedUntil(ss))}}
		c.writeFrame(l.sess.ch, resp)
		return
	case errors.Is(err, errSessionLocked):
		refuse = &amqp.Error{Condition: "com.microsoft:session-cannot-be-locked", Description: fmt.Sprintf(
			"The requested session '%s' cannot be accepted. It may be locked by another receiver.", *p.id)}
	case !time.Now().Before(p.deadline):
		refuse = &amqp.Error{Condition: amqp.ErrTimeout, Description: "No sessions available to accept within the timeout."}
	default:
		if p.timer == nil {
			p.timer = time.AfterFunc(time.Until(p.deadline), c.wake)
		}
		return
	}
	c.refuseAccept(l, refuse)
}

// refuseAccept answers a waiting session receiver's attach with a refusal.
func (c *conn) refuseAccept(l *link, e *amqp.Error) {
	p := l.accept
	l.accept = nil
	if p.timer != nil {
		p.timer.Stop()
	}
	c.srv.broker.cancelWait(l.entity, l)
	resp := p.resp
	resp.Source = nil
	c.writeFrame(l.sess.ch, resp)
	if e != nil {
		c.writeFrame(l.sess.ch, amqp.Detach{Handle: l.handle, Closed: true, Error: e})
		l.detached = true
	}
}

// dotnetTicks converts t to .NET ticks (100 ns since 0001-01-01), the unit of
// com.microsoft:locked-until-utc.
func dotnetTicks(t time.Time) int64 {
	return t.UnixNano()/100 + 621355968000000000
}

// resolve finds the entity at path and checks that a CBS token covers the
// link's address (the entity or its $management node).
func (c *conn) resolve(path, address string) (*entity, *amqp.Error) {
	e, err := c.srv.broker.lookup(path)
	if err != nil {
		return nil, &amqp.Error{Condition: amqp.ErrNotFound, Description: fmt.Sprintf(
			"The messaging entity '%s' could not be found.", path)}
	}
	if !c.authorized(address) {
		return nil, &amqp.Error{Condition: amqp.ErrUnauthorized, Description: fmt.Sprintf(
			"Unauthorized access to '%s': no valid CBS token covers it.", path)}
	}
	return e, nil
}

func (c *conn) onDetach(s *session, d amqp.Detach) error {
	l := s.links[d.Handle]
	if l == nil {
		return newConnError(amqp.ErrUnattachedHandle, "detach of unattached handle %d", d.Handle)
	}
	wasDetached := l.detached
	if l.accept != nil {
		c.refuseAccept(l, nil) // the attach still needs its answer
	}
	c.dropLink(l)
	if !wasDetached {
		c.writeFrame(s.ch, amqp.Detach{Handle: d.Handle, Closed: d.Closed})
	}
	return nil
}

// detachWith detaches l from the server side with an error.
func (c *conn) detachWith(l *link, e *amqp.Error) {
	if l.detached {
		return
	}
	c.dropLink(l)
	l.detached = true
	l.sess.links[l.handle] = l // keep the handle until the client answers
	c.writeFrame(l.sess.ch, amqp.Detach{Handle: l.handle, Closed: true, Error: e})
}

// ---- flow ----

func (c *conn) onFlow(s *session, f amqp.Flow) error {
	next := uint32(0)
	if f.NextIncomingID != nil {
		next = *f.NextIncomingID
	}
	s.remoteIncomingWindow = next + f.IncomingWindow - s.nextOutgoingID
	if int32(s.remoteIncomingWindow) < 0 {
		s.remoteIncomingWindow = 0
	}
	if f.Handle == nil {
		if f.Echo {
			c.writeSessionFlow(s)
		}
		c.pumpSession(s)
		return nil
	}
	l := s.links[*f.Handle]
	if l == nil {
		return newConnError(amqp.ErrUnattachedHandle, "flow for unattached handle %d", *f.Handle)
	}
	if l.detached {
		return nil
	}
	switch l.kind {
	case linkRecv, linkReply:
		dc := l.deliveryCount
		if f.DeliveryCount != nil {
			dc = *f.DeliveryCount
		}
		if f.LinkCredit != nil {
			credit := dc + *f.LinkCredit - l.deliveryCount
			if int32(credit) < 0 {
				credit = 0
			}
			l.credit = credit
		}
		l.drain = f.Drain
		c.pump(l)
		if f.Echo {
			c.writeLinkFlow(l, false)
		}
	default:
		if f.Echo {
			c.writeLinkFlow(l, false)
		}
	}
	c.pumpSession(s)
	return nil
}

func (c *conn) writeSessionFlow(s *session) {
	next := s.nextIncomingID
	c.writeFrame(s.ch, amqp.Flow{NextIncomingID: &next, IncomingWindow: s.incomingWindow,
		NextOutgoingID: s.nextOutgoingID, OutgoingWindow: sessionWindow})
}

func (c *conn) writeLinkFlow(l *link, drain bool) {
	s := l.sess
	next, h := s.nextIncomingID, l.handle
	f := amqp.Flow{NextIncomingID: &next, IncomingWindow: s.incomingWindow, NextOutgoingID: s.nextOutgoingID,
		OutgoingWindow: sessionWindow, Handle: &h, Drain: drain}
	dc := l.deliveryCount
	credit := l.credit
	if l.kind == linkSend || l.kind == linkRequest {
		credit = l.creditGiven
	}
	f.DeliveryCount, f.LinkCredit = &dc, &credit
	c.writeFrame(s.ch, f)
}

func (c *conn) pumpAll() {
	for _, s := range c.sessions {
		c.pumpSession(s)
	}
}

func (c *conn) pumpSession(s *session) {
	for _, l := range s.links {
		switch {
		case l.detached:
		case l.accept != nil:
			c.tryAccept(l)
		case l.kind == linkRecv || l.kind == linkReply:
			c.pump(l)
		}
	}
}

// pump sends what l's credit and the session window allow, then answers a
// drain request once nothing more is available.
func (c *conn) pump(l *link) {
	if l.accept != nil || l.detached {
		return
	}
	s := l.sess
	c.sendQueued(l)
	for len(l.queue) == 0 && l.credit > 0 && s.remoteIncomingWindow > 0 {
		n := int(min(l.credit, s.remoteIncomingWindow, 256))
		if l.kind == linkReply {
			if len(l.replies) == 0 {
				break
			}
			b := l.replies[0]
			l.replies[0] = nil
			l.replies = l.replies[1:]
			c.replyBytes -= len(b)
			c.enqueueTransfer(l, b, nil)
			continue
		}
		var ds []delivery
		if l.sbSession != nil {
			var err error
			ds, err = c.srv.broker.receiveSession(l.entity, l.sbSession, l, n, l.peekLock, l)
			if err != nil {
				c.detachWith(l, &amqp.Error{Condition: amqp.ErrSessionLockLost, Description: fmt.Sprintf(
					"The session lock has expired on the MessageSession. Accept a new MessageSession. Session: %s", l.sbSession.id)})
				return
			}
		} else {
			ds = c.srv.broker.receive(l.entity, n, l.peekLock, l)
		}
		for _, d := range ds {
			b, err := d.encode(l.peekLock)
			if err != nil {
				c.log.Error("encode delivery", "err", err)
				if d.locked {
					_ = c.srv.broker.settle(d.entity, d.lockToken, settlement{op: opRelease})
				}
				continue
			}
			var p *pendingLock
			if l.peekLock {
				p = &pendingLock{entity: d.entity, token: d.lockToken}
			}
			c.enqueueTransfer(l, b, p)
		}
		if len(ds) < n {
			break
		}
	}
	if l.drain && l.credit > 0 && len(l.queue) == 0 && (l.kind == linkRecv || len(l.replies) == 0) {
		l.deliveryCount += l.credit
		l.credit = 0
		if l.kind == linkRecv {
			c.srv.broker.cancelWait(l.entity, l)
		}
		c.writeLinkFlow(l, true)
	}
}

// enqueueTransfer commits one delivery on l (spending a credit) and sends as
// much of it as the session window allows.
func (c *conn) enqueueTransfer(l *link, payload []byte, p *pendingLock) {
	s := l.sess
	o := &outgoing{payload: payload, deliveryID: s.nextDeliveryID, settled: l.presettle}
	s.nextDeliveryID++
	l.credit--
	l.deliveryCount++
	if p != nil {
		o.tag = netOrder(p.token)
		if !o.settled {
			s.unsettled[o.deliveryID] = p
		}
	} else {
		o.tag = []byte(fmt.Sprintf("%d", o.deliveryID))
	}
	l.queue = append(l.queue, o)
	c.sendQueued(l)
}

// sendQueued writes transfer frames for l's queued deliveries while the
// client's session window allows, splitting by its max-frame-size.
func (c *conn) sendQueued(l *link) {
	s := l.sess
	for len(l.queue) > 0 && s.remoteIncomingWindow > 0 {
		o := l.queue[0]
		t := amqp.Transfer{Handle: l.handle, More: true}
		if !o.started {
			id, format := o.deliveryID, uint32(0)
			t.DeliveryID, t.DeliveryTag, t.MessageFormat, t.Settled = &id, o.tag, &format, o.settled
		}
		room := int(c.remoteMax) - amqp.FrameOverhead(t)
		rest := len(o.payload) - o.off
		chunk := min(rest, room)
		t.More = chunk < rest
		c.writeTransfer(s.ch, t, o.payload[o.off:o.off+chunk])
		o.off += chunk
		o.started = true
		s.nextOutgoingID++
		s.remoteIncomingWindow--
		if o.off == len(o.payload) {
			l.queue[0] = nil
			l.queue = l.queue[1:]
		}
	}
}

// ---- transfers from the client ----

func (c *conn) onTransfer(s *session, t amqp.Transfer) error {
	if s.incomingWindow == 0 {
		return newConnError(amqp.ErrWindowViolation, "transfer beyond the session's incoming window")
	}
	s.incomingWindow--
	s.nextIncomingID++
	l := s.links[t.Handle]
	if l == nil {
		return newConnError(amqp.ErrUnattachedHandle, "transfer on unattached handle %d", t.Handle)
	}
	if l.kind != linkSend && l.kind != linkRequest {
		return newConnError(amqp.ErrNotAllowed, "transfer on a link where the emulator is the sender")
	}
	if l.detached {
		return nil
	}
	if !l.inActive {
		if t.DeliveryID == nil {
			return newConnError(amqp.ErrNotAllowed, "first transfer of a delivery without delivery-id")
		}
		if l.creditGiven == 0 {
			c.detachWith(l, &amqp.Error{Condition: amqp.ErrTransferLimit, Description: "transfer without link credit"})
			return nil
		}
		l.creditGiven--
		l.deliveryCount++
		l.inActive, l.inID, l.inSettled, l.inOversize = true, *t.DeliveryID, t.Settled, false
		l.inFormat = 0
		if t.MessageFormat != nil {
			l.inFormat = *t.MessageFormat
		}
		l.inBuf = l.inBuf[:0]
	}
	if t.Aborted {
		l.inActive = false
		c.partial -= len(l.inBuf)
		l.inBuf = l.inBuf[:0]
		return nil
	}
	if !l.inOversize {
		if len(l.inBuf)+len(t.Payload) > maxMessageSize {
			c.partial -= len(l.inBuf)
			l.inOversize, l.inBuf = true, nil
		} else {
			l.inBuf = append(l.inBuf, t.Payload...)
			c.partial += len(t.Payload)
			if c.partial > maxPartialBytes {
				return newConnError(amqp.ErrResourceLimit, "more than %d bytes of unfinished transfers", maxPartialBytes)
			}
		}
	}
	if t.Settled {
		l.inSettled = true
	}
	if t.More {
		return nil
	}
	l.inActive = false
	c.partial -= len(l.inBuf)
	var state amqp.DeliveryState
	if l.inOversize {
		state = amqp.Rejected{Error: &amqp.Error{Condition: amqp.ErrMessageSize, Description: fmt.Sprintf(
			"The received message exceeds the limit of %d bytes.", maxMessageSize)}}
	} else {
		state = c.accept(l, l.inFormat, l.inBuf)
	}
	if cap(l.inBuf) > maxFrameSize {
		l.inBuf = nil
	}
	if !l.inSettled {
		c.writeFrame(s.ch, amqp.Disposition{Role: amqp.RoleReceiver, First: l.inID, Settled: true, State: state})
	}
	if l.creditGiven < senderCredit/2 {
		l.creditGiven = senderCredit
		c.writeLinkFlow(l, false)
	}
	if s.incomingWindow < sessionWindow/2 {
		s.incomingWindow = sessionWindow
		c.writeSessionFlow(s)
	}
	return nil
}

// accept hands a complete incoming message to the broker or to the request
// handlers and returns the outcome for the client.
func (c *conn) accept(l *link, format uint32, payload []byte) amqp.DeliveryState {
	msgs, err := decodeIncoming(format, payload)
	if err != nil {
		return amqp.Rejected{Error: &amqp.Error{Condition: amqp.ErrDecode, Description: err.Error()}}
	}
	if l.kind == linkRequest {
		for _, m := range msgs {
			c.request(l, m)
		}
		return amqp.Accepted{}
	}
	if _, err := c.srv.broker.send(l.entity, msgs); err != nil {
		return amqp.Rejected{Error: &amqp.Error{Condition: amqp.ErrNotAllowed, Description: err.Error()}}
	}
	return amqp.Accepted{}
}

// request runs one $cbs or $management request and routes the reply to the
// link whose target is the request's reply-to.
func (c *conn) request(l *link, req *goamqp.Message) {
	var resp *goamqp.Message
	if l.cbs {
		resp = c.putToken(req)
	} else {
		resp = c.management(l.entity, req)
	}
	if req.Properties == nil || req.Properties.ReplyTo == nil {
		c.log.Debug("request without reply-to dropped")
		return
	}
	if resp.Properties == nil {
		resp.Properties = &goamqp.MessageProperties{}
	}
	resp.Properties.CorrelationID = req.Properties.MessageID
	rl := c.replyLinks[*req.Properties.ReplyTo]
	if rl == nil {
		c.log.Debug("no reply link attached", "reply_to", *req.Properties.ReplyTo)
		return
	}
	b, err := resp.MarshalBinary()
	if err != nil {
		c.log.Error("encode reply", "err", err)
		return
	}
	if len(rl.replies) >= maxPendingReplies || c.replyBytes+len(b) > maxReplyBytes {
		// The client asks without reading the answers.
		c.detachWith(rl, &amqp.Error{Condition: amqp.ErrResourceLimit, Description: "too many unread replies"})
		return
	}
	rl.replies = append(rl.replies, b)
	c.replyBytes += len(b)
	c.pump(rl)
}

// ---- dispositions from the client ----

func (c *conn) onDisposition(s *session, d amqp.Disposition) error {
	if d.Role == amqp.RoleSender {
		return nil // the client settling its own transfers, which we settled already
	}
	last := d.First
	if d.Last != nil {
		last = *d.Last
	}
	if last-d.First > uint32(len(s.unsettled)) {
		for id, p := range s.unsettled {
			if id-d.First <= last-d.First {
				c.settleDelivery(s, id, p, d)
			}
		}
		return nil
	}
	for id := d.First; ; id++ {
		if p := s.unsettled[id]; p != nil {
			c.settleDelivery(s, id, p, d)
		}
		if id == last {
			break
		}
	}
	return nil
}

func (c *conn) settleDelivery(s *session, id uint32, p *pendingLock, d amqp.Disposition) {
	var st settlement
	reply := d.State
	switch o := d.State.(type) {
	case amqp.Accepted:
		st.op = opComplete
	case amqp.Released:
		st.op = opRelease
	case amqp.Rejected:
		st.op = opDeadLetter
		if o.Error != nil {
			if v, ok := o.Error.Info.Get("DeadLetterReason"); ok {
				if s, ok := v.(string); ok {
					st.reason = &s
				}
			}
			if v, ok := o.Error.Info.Get("DeadLetterErrorDescription"); ok {
				if s, ok := v.(string); ok {
					st.description = &s
				}
			}
		}
		// Confirm without the error: go-amqp returns an error in the
		// confirmation to the caller as a failure.
		reply = amqp.Rejected{}
	case amqp.Modified:
		st.op = opAbandon
		if o.UndeliverableHere {
			st.op = opDefer
		}
		st.props = annotationProps(o.MessageAnnotations)
	default:
		return // received, or no state: not terminal
	}
	delete(s.unsettled, id)
	if err := c.srv.broker.settle(p.entity, p.token, st); err != nil {
		reply = amqp.Rejected{Error: &amqp.Error{Condition: amqp.ErrMessageLockLost, Description: "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue."}}
	}
	if !d.Settled {
		c.writeFrame(s.ch, amqp.Disposition{Role: amqp.RoleSender, First: id, Settled: true, State: reply})
	}
}

// annotationProps converts a modified outcome's message-annotations (the
// SDK's PropertiesToModify) to application properties.
func annotationProps(m amqp.Map) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for _, kv := range m {
		var k string
		switch key := kv.Key.(type) {
		case string:
			k = key
		case amqp.Symbol:
			k = string(key)
		default:
			continue
		}
		switch v := kv.Value.(type) {
		case nil, bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64, float32, float64, string, []byte, time.Time:
			out[k] = v
		case amqp.Symbol:
			out[k] = goamqp.Symbol(v)
		case amqp.UUID:
			out[k] = goamqp.UUID(v)
		}
	}
	return out
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
