package servicebusemu

import (
	"container/heap"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// msgState values are those of the x-opt-message-state annotation.
type msgState int32

const (
	stateActive    msgState = 0
	stateDeferred  msgState = 1
	stateScheduled msgState = 2
)

type entityKind int

const (
	kindQueue entityKind = iota
	kindTopic
	kindSubscription
	kindDeadLetter
)

// Dead-letter reasons the service itself uses.
const (
	reasonMaxDelivery = "MaxDeliveryCountExceeded"
	reasonTTL         = "TTLExpiredException"
)

var (
	errLockLost    = errors.New("lock lost")
	errNotFound    = errors.New("entity not found")
	errMsgNotFound = errors.New("message not found")
	errNotAllowed  = errors.New("operation not allowed on this entity")
)

// message is one message in one entity. Its *goamqp.Message is never mutated
// once stored (changes make a copy), so connections can encode it outside the
// broker lock.
type message struct {
	seq           int64
	m             *goamqp.Message
	enqueued      time.Time
	expires       time.Time // zero: never
	scheduled     time.Time // for stateScheduled
	state         msgState
	deliveryCount uint32
	locked        bool
	lockToken     amqp.UUID
	lockedUntil   time.Time
	sessionOwner  any    // the session lock holder that locked it, on session entities
	avail         bool   // in the entity's (or its session's) available heap
	sessionID     string // properties.group-id, on session entities
}

// delivery is a snapshot of a message handed to a connection for encoding.
type delivery struct {
	m             *goamqp.Message
	seq           int64
	enqueued      time.Time
	expires       time.Time
	scheduled     time.Time
	state         msgState
	deliveryCount uint32
	locked        bool
	lockToken     amqp.UUID
	lockedUntil   time.Time
	entity        *entity
}

func (m *message) snapshot(e *entity) delivery {
	return delivery{m: m.m, seq: m.seq, enqueued: m.enqueued, expires: m.expires, scheduled: m.scheduled, state: m.state,
		deliveryCount: m.deliveryCount, locked: m.locked, lockToken: m.lockToken, lockedUntil: m.lockedUntil, entity: e}
}

// waker is what a connection registers with an entity to be told that
// messages became available.
type waker interface{ wake() }

type entity struct {
	name    string // as declared, e.g. "q", "t/Subscriptions/s", "q/$DeadLetterQueue"
	kind    entityKind
	props   EntityProperties
	dlq     *entity
	subs    []*entity // topics
	filter  filter    // subscriptions: which topic messages they take
	nextSeq int64
	msgs    map[int64]*message
	avail   seqHeap
	locks   map[amqp.UUID]*message
	dups    map[string]time.Time
	pruned  time.Time
	waiters map[waker]struct{}
	nextDue time.Time // zero: nothing due
	// sessions holds, on RequiresSession entities, the available messages
	// and lock of each session; e.avail stays empty there.
	sessions map[string]*sbSession
}

// sbSession is one Service Bus session of a session-enabled entity.
type sbSession struct {
	id          string
	avail       seqHeap
	owner       any   // the link holding the session lock, or nil
	ownerWaker  waker // woken when the lock is lost
	lockedUntil time.Time
	state       []byte
	updated     time.Time
	waiters     map[waker]struct{}
}

func (ss *sbSession) lockedBy(owner any, now time.Time) bool {
	return ss.owner == owner && now.Before(ss.lockedUntil)
}

func (e *entity) session(id string) *sbSession {
	ss, ok := e.sessions[id]
	if !ok {
		ss = &sbSession{id: id, waiters: map[waker]struct{}{}}
		e.sessions[id] = ss
	}
	return ss
}

func newEntity(name string, kind entityKind, p EntityProperties) *entity {
	return &entity{name: name, kind: kind, props: p.withDefaults(), msgs: map[int64]*message{},
		locks: map[amqp.UUID]*message{}, dups: map[string]time.Time{}, waiters: map[waker]struct{}{},
		sessions: map[string]*sbSession{}}
}

// broker holds every entity behind one mutex. Critical sections are short
// and do no I/O; encoding happens in the connection goroutines.
type broker struct {
	mu       sync.Mutex
	now      func() time.Time
	entities map[string]*entity // lower-cased path
	rnd      *rand.Rand
}

func newBroker(cfg *Config, now func() time.Time) *broker {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	b := &broker{now: now, entities: map[string]*entity{}, rnd: rand.New(rand.NewChaCha8(seed))}
	addWithDLQ := func(name string, kind entityKind, p EntityProperties) *entity {
		e := newEntity(name, kind, p)
		dp := p
		dp.RequiresSession = false // dead-letter queues never require sessions
		e.dlq = newEntity(name+"/$DeadLetterQueue", kindDeadLetter, dp)
		b.entities[strings.ToLower(name)] = e
		b.entities[strings.ToLower(e.dlq.name)] = e.dlq
		// The transfer dead-letter queue exists but stays empty: forwarding
		// is not emulated.
		tdlq := newEntity(name+"/$Transfer/$DeadLetterQueue", kindDeadLetter, dp)
		b.entities[strings.ToLower(tdlq.name)] = tdlq
		return e
	}
	for _, q := range cfg.Queues {
		addWithDLQ(q.Name, kindQueue, q.Properties)
	}
	for _, t := range cfg.Topics {
		te := newEntity(t.Name, kindTopic, t.Properties)
		b.entities[strings.ToLower(t.Name)] = te
		for _, s := range t.Subscriptions {
			se := addWithDLQ(t.Name+"/Subscriptions/"+s.Name, kindSubscription, s.Properties)
			se.filter, _ = compileRules(s.Rules) // checked by Config.validate
			te.subs = append(te.subs, se)
		}
	}
	return b
}

func (b *broker) lookup(path string) (*entity, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lookupLocked(path)
}

func (b *broker) lookupLocked(path string) (*entity, error) {
	e, ok := b.entities[strings.ToLower(strings.Trim(path, "/"))]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNotFound, path)
	}
	return e, nil
}

func (b *broker) newLockToken() amqp.UUID {
	var u amqp.UUID
	lo, hi := b.rnd.Uint64(), b.rnd.Uint64()
	for i := range 8 {
		u[i] = byte(lo >> (8 * i))
		u[8+i] = byte(hi >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (b *broker) newMessageID() string {
	u := b.newLockToken()
	return hex.EncodeToString(u[:])
}

// due lowers e's next deadline to t.
func (e *entity) due(t time.Time) {
	if t.IsZero() {
		return
	}
	if e.nextDue.IsZero() || t.Before(e.nextDue) {
		e.nextDue = t
	}
}

func (e *entity) notify() {
	for w := range e.waiters {
		w.wake()
	}
	clear(e.waiters)
}

func (e *entity) makeAvailable(m *message) {
	m.locked = false
	m.lockedUntil = time.Time{}
	if m.state != stateActive {
		return
	}
	if e.props.RequiresSession {
		ss := e.session(m.sessionID)
		if !m.avail {
			m.avail = true
			heap.Push(&ss.avail, m.seq)
		}
		for w := range ss.waiters {
			w.wake()
		}
		clear(ss.waiters)
		e.notify() // links waiting to accept the next available session
		return
	}
	if !m.avail {
		m.avail = true
		heap.Push(&e.avail, m.seq)
	}
	e.notify()
}

func (e *entity) remove(m *message) {
	if m.locked {
		delete(e.locks, m.lockToken)
	}
	m.avail = false
	m.locked = false
	delete(e.msgs, m.seq)
}

// ---- sending ----

// send enqueues msgs on a queue or topic. It returns the sequence numbers
// assigned (for a topic, of the scheduled copies it keeps).
func (b *broker) send(e *entity, msgs []*goamqp.Message) ([]int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.kind != kindQueue && e.kind != kindTopic {
		return nil, errNotAllowed
	}
	if err := e.checkSessions(msgs); err != nil {
		return nil, err
	}
	now := b.now()
	seqs := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		if m.Properties == nil {
			m.Properties = &goamqp.MessageProperties{}
		}
		if m.Properties.MessageID == nil {
			// The service assigns an id to messages sent without one.
			m.Properties.MessageID = b.newMessageID()
		}
		if b.duplicate(e, m, now) {
			seqs = append(seqs, 0)
			continue
		}
		var at time.Time
		if v, ok := m.Annotations["x-opt-scheduled-enqueue-time"]; ok {
			switch t := v.(type) {
			case time.Time:
				at = t
			case *time.Time:
				if t != nil {
					at = *t
				}
			}
		}
		if !at.IsZero() && at.After(now) {
			e.nextSeq++
			sm := &message{seq: e.nextSeq, m: m, state: stateScheduled, scheduled: at, enqueued: at, sessionID: sessionOf(m)}
			e.msgs[sm.seq] = sm
			e.due(at)
			seqs = append(seqs, sm.seq)
			continue
		}
		seqs = append(seqs, b.deliverLocked(e, m, now))
	}
	return seqs, nil
}

// errNoSessionID refuses a message without a session id for an entity that
// requires sessions, as the service does.
var errNoSessionID = errors.New("the SessionId was not set on a message, and it cannot be sent to the entity: entities that have session support enabled can only receive messages that have the SessionId set")

func sessionOf(m *goamqp.Message) string {
	if m.Properties != nil && m.Properties.GroupID != nil {
		return *m.Properties.GroupID
	}
	return ""
}

// checkSessions refuses messages without a session id when the entity, or
// any subscription of the topic, requires sessions.
func (e *entity) checkSessions(msgs []*goamqp.Message) error {
	needs := e.props.RequiresSession
	for _, s := range e.subs {
		needs = needs || s.props.RequiresSession
	}
	if !needs {
		return nil
	}
	for _, m := range msgs {
		if sessionOf(m) == "" {
			return errNoSessionID
		}
	}
	return nil
}

// duplicate reports whether m's MessageId was seen within the window, and
// records it otherwise.
func (b *broker) duplicate(e *entity, m *goamqp.Message, now time.Time) bool {
	if !e.props.RequiresDuplicateDetection || m.Properties == nil || m.Properties.MessageID == nil {
		return false
	}
	window := e.props.DuplicateDetectionHistoryTimeWindow
	if now.Sub(e.pruned) > window/10 {
		for id, t := range e.dups {
			if now.Sub(t) >= window {
				delete(e.dups, id)
			}
		}
		e.pruned = now
	}
	id := fmt.Sprint(m.Properties.MessageID)
	if t, ok := e.dups[id]; ok && now.Sub(t) < window {
		return true
	}
	e.dups[id] = now
	return false
}

// deliverLocked makes m active on a queue, or on every subscription of a
// topic, and returns the queue's sequence number.
func (b *broker) deliverLocked(e *entity, m *goamqp.Message, now time.Time) int64 {
	if e.kind == kindTopic {
		for _, s := range e.subs {
			if s.filter.match(m) {
				b.enqueueLocked(s, m, now)
			}
		}
		e.nextSeq++
		return e.nextSeq
	}
	return b.enqueueLocked(e, m, now)
}

// activateLocked turns a due scheduled message into an active one. On a
// queue it keeps its sequence number; a topic fans it out.
func (b *broker) activateLocked(e *entity, m *message, now time.Time) {
	if e.kind == kindTopic {
		e.remove(m)
		for _, s := range e.subs {
			if s.filter.match(m.m) {
				b.enqueueLocked(s, m.m, m.scheduled)
			}
		}
		return
	}
	m.state = stateActive
	m.enqueued = m.scheduled
	b.setExpiry(e, m)
	e.makeAvailable(m)
}

func (b *broker) setExpiry(e *entity, msg *message) {
	ttl := e.props.DefaultMessageTimeToLive
	if h := msg.m.Header; h != nil && h.TTL > 0 && (ttl == 0 || h.TTL < ttl) {
		ttl = h.TTL
	}
	if ttl > 0 {
		msg.expires = msg.enqueued.Add(ttl)
		e.due(msg.expires)
	}
}

func (b *broker) enqueueLocked(e *entity, m *goamqp.Message, now time.Time) int64 {
	e.nextSeq++
	msg := &message{seq: e.nextSeq, m: m, enqueued: now, state: stateActive, sessionID: sessionOf(m)}
	b.setExpiry(e, msg)
	e.msgs[msg.seq] = msg
	e.makeAvailable(msg)
	return msg.seq
}

// ---- receiving ----

// receive takes up to n available messages. In PeekLock mode they are locked;
// otherwise they are removed. If fewer than n were available, w is woken when
// more arrive.
func (b *broker) receive(e *entity, n int, peekLock bool, w waker) []delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.receiveLocked(e, &e.avail, n, peekLock)
	if len(out) < n && w != nil {
		e.waiters[w] = struct{}{}
	}
	return out
}

// receiveSession is receive for a session receiver holding ss's lock as
// owner. It reports errSessionLockLost once that lock is gone.
func (b *broker) receiveSession(e *entity, ss *sbSession, owner any, n int, peekLock bool, w waker) ([]delivery, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !ss.lockedBy(owner, b.now()) {
		return nil, errSessionLockLost
	}
	out := b.receiveLocked(e, &ss.avail, n, peekLock)
	if len(out) < n && w != nil {
		ss.waiters[w] = struct{}{}
	}
	return out, nil
}

func (b *broker) receiveLocked(e *entity, avail *seqHeap, n int, peekLock bool) []delivery {
	now := b.now()
	var out []delivery
	for len(out) < n && avail.Len() > 0 {
		seq := heap.Pop(avail).(int64)
		m := e.msgs[seq]
		if m == nil || !m.avail {
			continue
		}
		m.avail = false
		if !m.expires.IsZero() && !now.Before(m.expires) {
			b.expireLocked(e, m, now)
			continue
		}
		if peekLock {
			b.lockLocked(e, m, now)
			out = append(out, m.snapshot(e))
		} else {
			out = append(out, m.snapshot(e))
			e.remove(m)
		}
	}
	return out
}

func (b *broker) lockLocked(e *entity, m *message, now time.Time) {
	m.locked = true
	m.lockToken = b.newLockToken()
	m.lockedUntil = now.Add(e.props.LockDuration)
	if ss := e.sessionOfMessage(m); ss != nil {
		m.lockedUntil, m.sessionOwner = ss.lockedUntil, ss.owner
	}
	e.locks[m.lockToken] = m
	e.due(m.lockedUntil)
}

// sessionOfMessage is the session a message of a session-enabled entity belongs to, or nil.
func (e *entity) sessionOfMessage(m *message) *sbSession {
	if m.sessionID == "" || !e.props.RequiresSession {
		return nil
	}
	return e.sessions[m.sessionID]
}

// lockExpiry is when m's lock runs out. A message received through a session is locked by the
// session's lock, as in Service Bus: renewing the session lock keeps its messages locked, and
// losing or closing the session loses them.
func (e *entity) lockExpiry(m *message) time.Time {
	ss := e.sessionOfMessage(m)
	if ss == nil {
		return m.lockedUntil
	}
	if ss.owner == nil || ss.owner != m.sessionOwner {
		return time.Time{} // the session was let go, or lost and taken by another receiver
	}
	return ss.lockedUntil
}

// cancelWait forgets w's interest in e.
func (b *broker) cancelWait(e *entity, w waker) {
	b.mu.Lock()
	delete(e.waiters, w)
	b.mu.Unlock()
}

// ---- sessions ----

var (
	errSessionLockLost    = errors.New("session lock lost")
	errSessionLocked      = errors.New("session is locked by another receiver")
	errNoSessionAvailable = errors.New("no session available")
)

// acceptSession locks session id (or, with id nil, the session whose oldest
// available message is oldest) for owner. When none is available, w is woken
// as soon as one may be.
func (b *broker) acceptSession(e *entity, id *string, owner any, w waker) (*sbSession, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var ss *sbSession
	if id != nil {
		ss = e.session(*id)
		if ss.owner != nil && ss.owner != owner && now.Before(ss.lockedUntil) {
			return nil, errSessionLocked
		}
	} else {
		for _, c := range e.sessions {
			e.dropStale(&c.avail)
			if c.avail.Len() == 0 || (c.owner != nil && now.Before(c.lockedUntil)) {
				continue
			}
			if ss == nil || c.avail[0] < ss.avail[0] {
				ss = c
			}
		}
		if ss == nil {
			e.waiters[w] = struct{}{}
			return nil, errNoSessionAvailable
		}
	}
	b.reclaimLocked(e, ss, owner, now)
	ss.owner, ss.ownerWaker = owner, w
	ss.lockedUntil = now.Add(e.props.LockDuration)
	e.due(ss.lockedUntil)
	return ss, nil
}

// reclaimLocked returns to the session, before owner takes it, every message still locked
// through an earlier holder's lock: in Service Bus those locks went with the session, so the
// next receiver gets them first and in order. Left to the expiry sweep, which runs a moment
// later, the new holder would be handed the message behind them instead.
func (b *broker) reclaimLocked(e *entity, ss *sbSession, owner any, now time.Time) {
	for _, m := range e.msgs {
		if m.locked && m.sessionID == ss.id && m.sessionOwner != owner {
			b.lockExpiredLocked(e, m, now)
		}
	}
}

// dropStale pops heap entries whose message left or was taken since it was
// pushed (the heaps delete lazily), so the top is a real available message.
func (e *entity) dropStale(h *seqHeap) {
	for h.Len() > 0 {
		if m := e.msgs[(*h)[0]]; m != nil && m.avail {
			return
		}
		heap.Pop(h)
	}
}

// releaseSession gives up owner's lock on ss.
func (b *broker) releaseSession(e *entity, ss *sbSession, owner any, w waker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(ss.waiters, w)
	delete(e.waiters, w)
	if ss.owner == owner {
		ss.owner, ss.ownerWaker = nil, nil
		// Messages still locked through the session lose their locks with it.
		e.due(b.now())
		if ss.avail.Len() > 0 {
			e.notify()
		}
	}
}

// sessionLockedUntil reports the expiry of ss's lock, for the attach reply.
func (b *broker) sessionLockedUntil(ss *sbSession) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ss.lockedUntil
}

func (b *broker) lockedSession(e *entity, id string, now time.Time) (*sbSession, error) {
	ss, ok := e.sessions[id]
	if !ok || ss.owner == nil || !now.Before(ss.lockedUntil) {
		return nil, errSessionLockLost
	}
	return ss, nil
}

func (b *broker) renewSession(e *entity, id string) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	ss, err := b.lockedSession(e, id, now)
	if err != nil {
		return time.Time{}, err
	}
	ss.lockedUntil = now.Add(e.props.LockDuration)
	e.due(ss.lockedUntil)
	return ss.lockedUntil, nil
}

func (b *broker) sessionState(e *entity, id string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ss, err := b.lockedSession(e, id, b.now())
	if err != nil {
		return nil, err
	}
	return ss.state, nil
}

func (b *broker) setSessionState(e *entity, id string, state []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	ss, err := b.lockedSession(e, id, now)
	if err != nil {
		return err
	}
	ss.state = append([]byte(nil), state...)
	ss.updated = now
	return nil
}

// messageSessions lists the sessions that have messages or, when since is a
// real time, whose state changed after it. The SDKs ask for sessions with
// messages by sending DateTime.MaxValue (year 9999 or later).
func (b *broker) messageSessions(e *entity, since time.Time, skip, top int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	withMessages := map[string]bool{}
	for _, m := range e.msgs {
		withMessages[m.sessionID] = true
	}
	var ids []string
	for id, ss := range e.sessions {
		if since.IsZero() || since.Year() >= 9999 {
			if withMessages[id] {
				ids = append(ids, id)
			}
		} else if ss.updated.After(since) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if skip >= len(ids) {
		return nil
	}
	ids = ids[skip:]
	if top > 0 && top < len(ids) {
		ids = ids[:top]
	}
	return ids
}

// ---- settlement ----

type settleOp int

const (
	opComplete settleOp = iota
	opAbandon
	opRelease
	opDefer
	opDeadLetter
)

type settlement struct {
	op          settleOp
	reason      *string
	description *string
	props       map[string]any
}

// lockedMessage returns the message locked with token, or errLockLost.
func (b *broker) lockedMessage(e *entity, token amqp.UUID, now time.Time) (*message, error) {
	m, ok := e.locks[token]
	if !ok || !m.locked || m.lockToken != token {
		return nil, errLockLost
	}
	if !now.Before(e.lockExpiry(m)) {
		b.lockExpiredLocked(e, m, now)
		return nil, errLockLost
	}
	return m, nil
}

func (b *broker) settle(e *entity, token amqp.UUID, s settlement) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	m, err := b.lockedMessage(e, token, now)
	if err != nil {
		return err
	}
	delete(e.locks, token)
	m.locked = false
	if s.props != nil && s.op != opComplete {
		m.m = withAppProperties(m.m, s.props)
	}
	switch s.op {
	case opComplete:
		e.remove(m)
	case opRelease:
		e.makeAvailable(m)
	case opAbandon:
		m.deliveryCount++
		b.retryOrDeadLetter(e, m, now)
	case opDefer:
		m.state = stateDeferred
		m.lockedUntil = time.Time{}
	case opDeadLetter:
		props := map[string]any{}
		if s.reason != nil {
			props["DeadLetterReason"] = *s.reason
		}
		if s.description != nil {
			props["DeadLetterErrorDescription"] = *s.description
		}
		b.deadLetterLocked(e, m, props, now)
	}
	return nil
}

// retryOrDeadLetter puts an unlocked message back, or dead-letters it once it
// has used up MaxDeliveryCount attempts.
func (b *broker) retryOrDeadLetter(e *entity, m *message, now time.Time) {
	if e.kind != kindDeadLetter && int(m.deliveryCount) >= e.props.MaxDeliveryCount {
		b.deadLetterLocked(e, m, map[string]any{
			"DeadLetterReason":           reasonMaxDelivery,
			"DeadLetterErrorDescription": fmt.Sprintf("Message could not be consumed after %d delivery attempts.", e.props.MaxDeliveryCount),
		}, now)
		return
	}
	e.makeAvailable(m)
}

func (b *broker) deadLetterLocked(e *entity, m *message, props map[string]any, now time.Time) {
	e.remove(m)
	if e.kind == kindDeadLetter {
		// Dead-lettering from the dead-letter queue keeps the message there.
		m.m = withAppProperties(m.m, props)
		e.msgs[m.seq] = m
		e.makeAvailable(m)
		return
	}
	d := e.dlq
	dm := &message{seq: m.seq, m: withAppProperties(m.m, props), enqueued: m.enqueued,
		deliveryCount: m.deliveryCount, state: stateActive}
	d.msgs[dm.seq] = dm
	d.makeAvailable(dm)
}

func (b *broker) lockExpiredLocked(e *entity, m *message, now time.Time) {
	delete(e.locks, m.lockToken)
	m.locked = false
	m.deliveryCount++
	b.retryOrDeadLetter(e, m, now)
}

func (b *broker) expireLocked(e *entity, m *message, now time.Time) {
	if e.props.DeadLetteringOnMessageExpiration && e.kind != kindDeadLetter {
		b.deadLetterLocked(e, m, map[string]any{
			"DeadLetterReason":           reasonTTL,
			"DeadLetterErrorDescription": "The message expired and was dead lettered.",
		}, now)
		return
	}
	e.remove(m)
}

// withAppProperties returns a copy of m with props merged into its
// application properties.
func withAppProperties(m *goamqp.Message, props map[string]any) *goamqp.Message {
	c := *m
	c.ApplicationProperties = make(map[string]any, len(m.ApplicationProperties)+len(props))
	maps.Copy(c.ApplicationProperties, m.ApplicationProperties)
	maps.Copy(c.ApplicationProperties, props)
	return &c
}

// renew extends the locks of tokens and returns their new expiry.
func (b *broker) renew(e *entity, tokens []amqp.UUID) ([]time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	out := make([]time.Time, 0, len(tokens))
	for _, t := range tokens {
		m, err := b.lockedMessage(e, t, now)
		if err != nil {
			return nil, err
		}
		m.lockedUntil = now.Add(e.props.LockDuration)
		e.due(m.lockedUntil)
		out = append(out, m.lockedUntil)
	}
	return out, nil
}

// ---- management reads ----

func (b *broker) peek(e *entity, from int64, n int) []delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	seqs := make([]int64, 0, len(e.msgs))
	for s := range e.msgs {
		if s >= from {
			seqs = append(seqs, s)
		}
	}
	slices.Sort(seqs)
	out := make([]delivery, 0, min(n, len(seqs)))
	for _, s := range seqs[:min(n, len(seqs))] {
		d := e.msgs[s].snapshot(e)
		d.locked = false
		out = append(out, d)
	}
	return out
}

func (b *broker) receiveDeferred(e *entity, seqs []int64, peekLock bool) ([]delivery, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var out []delivery
	for _, s := range seqs {
		m, ok := e.msgs[s]
		if !ok || m.state != stateDeferred || m.locked {
			continue
		}
		if peekLock {
			b.lockLocked(e, m, now)
			out = append(out, m.snapshot(e))
		} else {
			out = append(out, m.snapshot(e))
			e.remove(m)
		}
	}
	if len(out) == 0 && len(seqs) > 0 {
		return nil, errMsgNotFound
	}
	return out, nil
}

func (b *broker) cancelScheduled(e *entity, seqs []int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range seqs {
		if m, ok := e.msgs[s]; ok && m.state == stateScheduled {
			e.remove(m)
		}
	}
	return nil
}

// ---- time ----

// sweep expires locks, activates scheduled messages and drops or dead-letters
// expired ones, for every entity whose next deadline has passed.
func (b *broker) sweep() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for _, e := range b.entities {
		if e.nextDue.IsZero() || now.Before(e.nextDue) {
			continue
		}
		b.sweepLocked(e, now)
	}
}

func (b *broker) sweepLocked(e *entity, now time.Time) {
	e.nextDue = time.Time{}
	for _, ss := range e.sessions {
		if ss.owner == nil {
			continue
		}
		if now.Before(ss.lockedUntil) {
			e.due(ss.lockedUntil)
			continue
		}
		// The holder learns of the loss on its next receive.
		if ss.ownerWaker != nil {
			ss.ownerWaker.wake()
		}
		ss.owner, ss.ownerWaker = nil, nil
		if ss.avail.Len() > 0 {
			e.notify()
		}
	}
	for _, m := range e.msgs {
		switch {
		case m.locked:
			if until := e.lockExpiry(m); !now.Before(until) {
				b.lockExpiredLocked(e, m, now)
			} else {
				e.due(until)
			}
		case m.state == stateScheduled:
			if now.Before(m.scheduled) {
				e.due(m.scheduled)
				continue
			}
			b.activateLocked(e, m, now)
		case !m.expires.IsZero():
			if !now.Before(m.expires) && m.state == stateActive {
				b.expireLocked(e, m, now)
			} else {
				e.due(m.expires)
			}
		}
	}
}

// expireLocks ends every lock on path now, as if LockDuration had passed.
func (b *broker) expireLocks(path string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(path)
	if err != nil {
		return err
	}
	now := b.now()
	for _, m := range e.locks {
		b.lockExpiredLocked(e, m, now)
	}
	return nil
}

// ---- inspection ----

// Counts counts the messages of an entity by state.
type Counts struct {
	Active       int `json:"active"` // including locked ones
	Scheduled    int `json:"scheduled"`
	Deferred     int `json:"deferred"`
	DeadLettered int `json:"deadLettered"` // in the entity's dead-letter queue
	Locked       int `json:"locked"`
}

func (b *broker) counts(path string) (Counts, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(path)
	if err != nil {
		return Counts{}, err
	}
	return e.countsLocked(), nil
}

func (e *entity) countsLocked() Counts {
	var s Counts
	for _, m := range e.msgs {
		switch m.state {
		case stateActive:
			s.Active++
		case stateDeferred:
			s.Deferred++
		case stateScheduled:
			s.Scheduled++
		}
		if m.locked {
			s.Locked++
		}
	}
	if e.dlq != nil {
		s.DeadLettered = len(e.dlq.msgs)
	}
	return s
}

// State is the namespace's contents: every queue, topic and subscription with its message
// counts. It holds no message bodies.
type State struct {
	Entities []EntityState `json:"entities"`
}

// EntityState is one entity: Kind is queue, topic or subscription; Name is its path, such as
// "events/Subscriptions/appreg".
type EntityState struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Counts
}

var kindNames = map[entityKind]string{kindQueue: "queue", kindTopic: "topic", kindSubscription: "subscription"}

func (b *broker) state() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := State{Entities: []EntityState{}}
	for _, e := range b.entities {
		if e.kind == kindDeadLetter {
			continue // counted in its entity's DeadLettered
		}
		st.Entities = append(st.Entities, EntityState{Name: e.name, Kind: kindNames[e.kind], Counts: e.countsLocked()})
	}
	slices.SortFunc(st.Entities, func(a, b EntityState) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// reset empties every entity, dead-letter queues included, as if the namespace had just been
// created from its Config. Sequence numbers keep counting up, so a client that peeks from the
// last number it saw does not miss what comes after. Links, waiters and session owners stay:
// connected clients keep working, and a lock they still hold is simply lost.
func (b *broker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.entities {
		e.msgs, e.avail, e.locks, e.dups = map[int64]*message{}, nil, map[amqp.UUID]*message{}, map[string]time.Time{}
		e.nextDue = time.Time{}
		for _, ss := range e.sessions {
			ss.avail, ss.state = nil, nil
		}
	}
}

// DeadLetter describes one dead-lettered message.
type DeadLetter struct {
	SequenceNumber int64  `json:"sequenceNumber"`
	MessageID      string `json:"messageId"`
	Reason         string `json:"reason"`
	Description    string `json:"description"`
	DeliveryCount  int    `json:"deliveryCount"` // as the SDK reports it: attempts + 1
}

func (b *broker) deadLetters(path string) ([]DeadLetter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(path)
	if err != nil {
		return nil, err
	}
	if e.dlq != nil {
		e = e.dlq
	}
	out := make([]DeadLetter, 0, len(e.msgs))
	for _, m := range e.msgs {
		d := DeadLetter{SequenceNumber: m.seq, DeliveryCount: int(m.deliveryCount) + 1}
		if m.m.Properties != nil && m.m.Properties.MessageID != nil {
			d.MessageID = fmt.Sprint(m.m.Properties.MessageID)
		}
		d.Reason, _ = m.m.ApplicationProperties["DeadLetterReason"].(string)
		d.Description, _ = m.m.ApplicationProperties["DeadLetterErrorDescription"].(string)
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b DeadLetter) int { return int(a.SequenceNumber - b.SequenceNumber) })
	return out, nil
}

// seqHeap is a min-heap of sequence numbers.
type seqHeap []int64

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
