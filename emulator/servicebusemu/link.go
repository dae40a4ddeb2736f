package servicebusemu

import (
	"errors"
	"fmt"
	"strings"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

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
			l.entity, refuse = c.resolve(src, src, actionReceive)
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
			l.entity, refuse = c.resolve(tgt[:len(tgt)-len("/$management")], tgt, "")
			l.claim, _ = c.authorized(tgt)
		default:
			l.entity, refuse = c.resolve(tgt, tgt, actionSend)
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

// resolve finds the entity at path, checks that a CBS token covers the
// link's address (the entity or its $management node) and, for an Entra
// token, that RBAC gives its principal action ("" for a $management link,
// whose requests are judged one by one).
func (c *conn) resolve(path, address, action string) (*entity, *amqp.Error) {
	e, err := c.srv.broker.lookup(path)
	if err != nil {
		return nil, &amqp.Error{Condition: amqp.ErrNotFound, Description: fmt.Sprintf(
			"The messaging entity '%s' could not be found.", path)}
	}
	cl, ok := c.authorized(address)
	if !ok {
		return nil, &amqp.Error{Condition: amqp.ErrUnauthorized, Description: fmt.Sprintf(
			"Unauthorized access to '%s': no valid CBS token covers it.", path)}
	}
	if action != "" {
		if refuse := c.mayAct(cl, e, action); refuse != nil {
			return nil, refuse
		}
	}
	return e, nil
}

// mayManage judges a $management request by the right it needs: scheduling
// and cancelling send, everything else (peek, renew, receive deferred,
// sessions) listens.
func (c *conn) mayManage(l *link, req *goamqp.Message) *amqp.Error {
	op, _ := req.ApplicationProperties["operation"].(string)
	action := actionReceive
	if op == "com.microsoft:schedule-message" || op == "com.microsoft:cancel-scheduled-message" {
		action = actionSend
	}
	return c.mayAct(l.claim, l.entity, action)
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
