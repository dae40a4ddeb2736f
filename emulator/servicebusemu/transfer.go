package servicebusemu

import (
	"bytes"
	"fmt"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

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
	id, settled := l.inID, l.inSettled
	answer := func(state amqp.DeliveryState) {
		if !settled && c.sessions[s.ch] == s {
			c.writeFrame(s.ch, amqp.Disposition{Role: amqp.RoleReceiver, First: id, Settled: true, State: state})
		}
	}
	switch {
	case l.inOversize:
		answer(amqp.Rejected{Error: &amqp.Error{Condition: amqp.ErrMessageSize, Description: fmt.Sprintf(
			"The received message exceeds the limit of %d bytes.", maxMessageSize)}})
	case l.kind == linkSend:
		wait, f := c.srv.Take(OpSend)
		format, payload := l.inFormat, l.inBuf
		finish := func() {
			if f != nil && f.Status != 0 {
				answer(faultOutcome(f)) // refused: nothing is enqueued
				return
			}
			answer(c.accept(l, format, payload))
		}
		if wait > 0 {
			// The message is accepted when the late answer goes out, not before; other links
			// on the connection carry on meanwhile.
			payload = bytes.Clone(payload)
			c.later(wait, finish)
		} else {
			finish()
		}
	default:
		answer(c.accept(l, l.inFormat, l.inBuf))
	}
	if cap(l.inBuf) > maxFrameSize {
		l.inBuf = nil
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
	if e := checkIDs(msgs); e != nil {
		return amqp.Rejected{Error: e}
	}
	if _, err := c.srv.broker.send(l.entity, msgs); err != nil {
		return amqp.Rejected{Error: &amqp.Error{Condition: amqp.ErrNotAllowed, Description: err.Error()}}
	}
	return amqp.Accepted{}
}

// request runs one $cbs or $management request, through the test controls, and routes the
// reply to the link whose target is the request's reply-to.
func (c *conn) request(l *link, req *goamqp.Message) {
	wait, f := c.srv.Take(requestOp(l, req))
	answer := func() {
		var resp *goamqp.Message
		switch {
		case f != nil && f.Status != 0:
			resp = faultReply(l.cbs, f)
		case l.cbs:
			resp = c.putToken(req)
		default:
			if e := c.mayManage(l, req); e != nil {
				resp = mgmtReply(401, e.Description, string(e.Condition))
				break
			}
			resp = c.management(l.entity, req)
		}
		c.reply(req, resp)
	}
	if wait > 0 {
		c.later(wait, answer)
		return
	}
	answer()
}

// reply sends resp to the link whose target is req's reply-to.
func (c *conn) reply(req, resp *goamqp.Message) {
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
	wait, f := c.srv.Take(settleOps[st.op])
	finish := func() {
		switch {
		case f != nil && f.Status != 0:
			reply = faultOutcome(f) // the lock stays, as when the service fails a settlement
		case c.srv.broker.settle(p.entity, p.token, st) != nil:
			reply = amqp.Rejected{Error: &amqp.Error{Condition: amqp.ErrMessageLockLost, Description: "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue."}}
		}
		if !d.Settled && c.sessions[s.ch] == s {
			c.writeFrame(s.ch, amqp.Disposition{Role: amqp.RoleSender, First: id, Settled: true, State: reply})
		}
	}
	if wait > 0 {
		c.later(wait, finish)
		return
	}
	finish()
}

// settleOps names each settlement for the controls.
var settleOps = map[settleOp]string{
	opComplete: OpComplete, opAbandon: OpAbandon, opDefer: OpDefer, opDeadLetter: OpDeadLetter, opRelease: OpRelease,
}

// later runs fn on the connection's goroutine after d, unless the connection ends first: an
// injected latency delays one answer without stalling the connection's other links.
func (c *conn) later(d time.Duration, fn func()) {
	time.AfterFunc(d, func() {
		select {
		case c.ctrl <- fn:
		case <-c.done:
		}
	})
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
