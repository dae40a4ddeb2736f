package servicebusemu

import (
	"fmt"

	"appreg/emulator/servicebusemu/internal/amqp"
)

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
