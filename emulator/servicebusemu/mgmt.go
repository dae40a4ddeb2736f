package servicebusemu

import (
	"errors"
	"fmt"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"appreg/emulator/servicebusemu/internal/amqp"
)

// management answers a $management request for entity e. Fields the Go SDK
// type-asserts as []int64 or []time.Time are returned as typed slices, which
// go-amqp encodes as AMQP arrays.
func (c *conn) management(e *entity, req *goamqp.Message) *goamqp.Message {
	op, _ := req.ApplicationProperties["operation"].(string)
	body := stringMap(req.Value)
	b := c.srv.broker
	switch op {
	case "com.microsoft:renew-lock":
		tokens, err := uuids(body["lock-tokens"])
		if err != nil {
			return badRequest(err)
		}
		exp, err := b.renew(e, tokens)
		if err != nil {
			return failure(err)
		}
		return okReply(map[string]any{"expirations": exp})

	case "com.microsoft:peek-message":
		from, _ := toInt64(body["from-sequence-number"])
		n, _ := toInt64(body["message-count"])
		if n <= 0 {
			n = 1
		}
		ds := b.peek(e, from, int(min(n, 1000)))
		if len(ds) == 0 {
			return mgmtReply(204, "No messages available", "")
		}
		return messagesReply(ds, false)

	case "com.microsoft:receive-by-sequence-number":
		seqs, err := int64s(body["sequence-numbers"])
		if err != nil {
			return badRequest(err)
		}
		mode, _ := toInt64(body["receiver-settle-mode"])
		ds, err := b.receiveDeferred(e, seqs, mode != 0)
		if err != nil {
			return failure(err)
		}
		return messagesReply(ds, mode != 0)

	case "com.microsoft:schedule-message":
		list, _ := body["messages"].([]any)
		if len(list) == 0 {
			return badRequest(errors.New("no messages to schedule"))
		}
		msgs := make([]*goamqp.Message, 0, len(list))
		for _, item := range list {
			raw, _ := stringMap(item)["message"].([]byte)
			m := new(goamqp.Message)
			if err := m.UnmarshalBinary(raw); err != nil {
				return badRequest(fmt.Errorf("scheduled message: %w", err))
			}
			msgs = append(msgs, m)
		}
		seqs, err := b.send(e, msgs)
		if err != nil {
			return failure(err)
		}
		return okReply(map[string]any{"sequence-numbers": seqs})

	case "com.microsoft:cancel-scheduled-message":
		seqs, err := int64s(body["sequence-numbers"])
		if err != nil {
			return badRequest(err)
		}
		if err := b.cancelScheduled(e, seqs); err != nil {
			return failure(err)
		}
		return okReply(map[string]any{})

	case "com.microsoft:update-disposition":
		tokens, err := uuids(body["lock-tokens"])
		if err != nil {
			return badRequest(err)
		}
		var st settlement
		switch status, _ := body["disposition-status"].(string); status {
		case "completed":
			st.op = opComplete
		case "abandoned":
			st.op = opAbandon
		case "defered", "deferred":
			st.op = opDefer
		case "suspended":
			st.op = opDeadLetter
		default:
			return badRequest(fmt.Errorf("unknown disposition-status %q", status))
		}
		if r, ok := body["deadletter-reason"].(string); ok {
			st.reason = &r
		}
		if d, ok := body["deadletter-description"].(string); ok {
			st.description = &d
		}
		if p := stringMap(body["properties-to-modify"]); len(p) > 0 {
			st.props = p
		}
		for _, t := range tokens {
			if err := b.settle(e, t, st); err != nil {
				return failure(err)
			}
		}
		return okReply(map[string]any{})

	case "com.microsoft:renew-session-lock":
		id, _ := body["session-id"].(string)
		exp, err := b.renewSession(e, id)
		if err != nil {
			return failure(err)
		}
		return okReply(map[string]any{"expiration": exp})

	case "com.microsoft:get-session-state":
		id, _ := body["session-id"].(string)
		state, err := b.sessionState(e, id)
		if err != nil {
			return failure(err)
		}
		var v any
		if state != nil {
			v = state
		}
		return okReply(map[string]any{"session-state": v})

	case "com.microsoft:set-session-state":
		id, _ := body["session-id"].(string)
		state, _ := body["session-state"].([]byte)
		if err := b.setSessionState(e, id, state); err != nil {
			return failure(err)
		}
		return okReply(map[string]any{})

	case "com.microsoft:get-message-sessions":
		since, _ := body["last-updated-time"].(time.Time)
		skip, _ := toInt64(body["skip"])
		top, _ := toInt64(body["top"])
		ids := b.messageSessions(e, since, int(max(skip, 0)), int(max(top, 0)))
		if len(ids) == 0 {
			return mgmtReply(204, "No sessions available", "")
		}
		return okReply(map[string]any{"sessions-ids": ids})
	}
	return mgmtReply(400, fmt.Sprintf("The operation '%s' is not supported.", op), string(amqp.ErrNotImplemented))
}

// mgmtReply builds a $management reply. Unlike $cbs, management uses the
// camel-case keys; the Go SDK reads either, rhea-based clients only these.
func mgmtReply(code int32, description, condition string) *goamqp.Message {
	m := &goamqp.Message{ApplicationProperties: map[string]any{
		"statusCode":        code,
		"statusDescription": description,
	}}
	if condition != "" {
		m.ApplicationProperties["errorCondition"] = goamqp.Symbol(condition)
	}
	return m
}

func okReply(body map[string]any) *goamqp.Message {
	m := mgmtReply(200, "OK", "")
	m.Value = body
	return m
}

func badRequest(err error) *goamqp.Message {
	return mgmtReply(400, err.Error(), string(amqp.ErrArgument))
}

// failure maps broker errors to the status codes the SDKs interpret: 410 is
// lock lost, 404 not found.
func failure(err error) *goamqp.Message {
	switch {
	case errors.Is(err, errLockLost):
		return mgmtReply(410, "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.", string(amqp.ErrMessageLockLost))
	case errors.Is(err, errSessionLockLost):
		return mgmtReply(410, "The session lock has expired on the MessageSession. Accept a new MessageSession.", string(amqp.ErrSessionLockLost))
	case errors.Is(err, errMsgNotFound):
		return mgmtReply(404, "Failed to lock one or more specified messages. The message does not exist.", "com.microsoft:message-not-found")
	case errors.Is(err, errNotAllowed):
		return mgmtReply(400, err.Error(), string(amqp.ErrNotAllowed))
	}
	return mgmtReply(500, err.Error(), string(amqp.ErrInternal))
}

// maxListReply bounds the messages of one peek reply, as the service bounds
// its replies; the client asks again from the next sequence number.
const maxListReply = 4 << 20

func messagesReply(ds []delivery, withLock bool) *goamqp.Message {
	list := make([]any, 0, len(ds))
	size := 0
	for _, d := range ds {
		raw, err := d.encode(withLock)
		if err != nil {
			return failure(err)
		}
		if size += len(raw); size > maxListReply && len(list) > 0 && !withLock {
			break
		}
		entry := map[string]any{"message": raw}
		if withLock && d.locked {
			entry["lock-token"] = goamqp.UUID(d.lockToken)
		}
		list = append(list, entry)
	}
	return okReply(map[string]any{"messages": list})
}

// stringMap normalizes a decoded AMQP map to string keys; clients differ in
// sending string or symbol keys.
func stringMap(v any) map[string]any {
	switch m := v.(type) {
	case map[string]any:
		return m
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, val := range m {
			switch key := k.(type) {
			case string:
				out[key] = val
			case goamqp.Symbol:
				out[string(key)] = val
			}
		}
		return out
	case goamqp.Annotations:
		return stringMap(map[any]any(m))
	}
	return map[string]any{}
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case int:
		return int64(n), true
	case uint64:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint8:
		return int64(n), true
	}
	return 0, false
}

func int64s(v any) ([]int64, error) {
	switch s := v.(type) {
	case []int64:
		return s, nil
	case []any:
		out := make([]int64, 0, len(s))
		for _, x := range s {
			n, ok := toInt64(x)
			if !ok {
				return nil, fmt.Errorf("sequence number of type %T", x)
			}
			out = append(out, n)
		}
		return out, nil
	}
	return nil, fmt.Errorf("sequence-numbers of type %T", v)
}

func uuids(v any) ([]amqp.UUID, error) {
	switch s := v.(type) {
	case []goamqp.UUID:
		out := make([]amqp.UUID, len(s))
		for i := range s {
			out[i] = amqp.UUID(s[i])
		}
		return out, nil
	case []any:
		out := make([]amqp.UUID, 0, len(s))
		for _, x := range s {
			u, ok := x.(goamqp.UUID)
			if !ok {
				return nil, fmt.Errorf("lock token of type %T", x)
			}
			out = append(out, amqp.UUID(u))
		}
		return out, nil
	}
	return nil, fmt.Errorf("lock-tokens of type %T", v)
}
