package funchost

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"
)

// This file builds the body the host POSTs to a custom handler,
// {"Data": {...}, "Metadata": {...}}, value by value the way the host's
// ScriptInvocationContextExtensions does with Json.NET:
//   - a string is serialized again, so it arrives as a JSON string holding a
//     JSON string literal ("MessageId": "\"abc\"");
//   - a number is serialized to its text ("DeliveryCount": "1");
//   - a DateTime or DateTimeOffset is round-tripped through its text form,
//     which drops fractions of a second; a DateTime then prints without an
//     offset, a DateTimeOffset with "+00:00";
//   - an object stays an object; byte[] becomes base64;
//   - null values are left out of Metadata.
// Keys are written in the host's order so a captured body can be compared
// byte for byte by eye.

// member is one key of a JSON object whose key order matters.
type member struct {
	key   string
	value any
}

// object marshals its members in order.
type object []member

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshal(m.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.key, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping: Json.NET leaves <, > and &
// alone, and the handler should see the bytes the host would send.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// twice returns s serialized as a JSON string literal; marshalled as a
// value it is serialized a second time, as the host sends strings.
func twice(s string) string {
	b, _ := marshal(s)
	return string(b)
}

// Json.NET's default DateTime format is yyyy-MM-ddTHH:mm:ss.FFFFFFFK: up to
// seven fraction digits without trailing zeros, and K is "Z" for UTC, the
// offset for local times and nothing for unspecified ones.
const (
	netUTC         = "2006-01-02T15:04:05.9999999Z"
	netOffset      = "2006-01-02T15:04:05.9999999-07:00"
	netUnspecified = "2006-01-02T15:04:05.9999999"
)

// maxDateTimeOffset is DateTimeOffset.MaxValue after the host's text
// round-trip: what .NET reports as ExpiresAt for a message that never expires.
var maxDateTimeOffset = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// sysData is the Metadata.sys object the host adds to every invocation.
type sysData struct {
	MethodName string
	UtcNow     time.Time
	RandGuid   string
}

func (s sysData) object() object {
	return object{
		{"MethodName", s.MethodName},
		{"UtcNow", s.UtcNow.UTC().Format(netUTC)},
		{"RandGuid", s.RandGuid},
	}
}

func newSys(function string, now time.Time) sysData {
	return sysData{MethodName: function, UtcNow: now, RandGuid: uuid.NewString()}
}

// encodeServiceBus builds the invocation body for one message, cardinality one.
func encodeServiceBus(t *ServiceBusTrigger, msg *azservicebus.ReceivedMessage, sys sysData) ([]byte, error) {
	var data any
	if t.Binary {
		data = base64.StdEncoding.EncodeToString(msg.Body)
	} else {
		data = twice(string(msg.Body))
	}

	meta := object{}
	str := func(key string, v *string) {
		if v != nil {
			meta = append(meta, member{key, twice(*v)})
		}
	}
	meta = append(meta, member{"DeliveryCount", strconv.FormatUint(uint64(msg.DeliveryCount), 10)})
	str("DeadLetterSource", msg.DeadLetterSource)
	meta = append(meta, member{"LockToken", twice(uuid.UUID(msg.LockToken).String())})
	expires := maxDateTimeOffset
	if msg.ExpiresAt != nil && msg.ExpiresAt.Before(maxDateTimeOffset) {
		expires = msg.ExpiresAt.UTC().Truncate(time.Second)
	}
	meta = append(meta,
		member{"ExpiresAtUtc", expires.Format(netUnspecified)},
		member{"ExpiresAt", expires.Format(netOffset)})
	if msg.EnqueuedTime != nil {
		enq := msg.EnqueuedTime.UTC().Truncate(time.Second)
		meta = append(meta,
			member{"EnqueuedTimeUtc", enq.Format(netUnspecified)},
			member{"EnqueuedTime", enq.Format(netOffset)})
	}
	if msg.MessageID != "" {
		meta = append(meta, member{"MessageId", twice(msg.MessageID)})
	}
	str("ContentType", msg.ContentType)
	str("ReplyTo", msg.ReplyTo)
	if msg.SequenceNumber != nil {
		meta = append(meta, member{"SequenceNumber", strconv.FormatInt(*msg.SequenceNumber, 10)})
	}
	str("To", msg.To)
	str("Subject", msg.Subject)
	str("Label", msg.Subject)
	str("CorrelationId", msg.CorrelationID)
	props := applicationProperties(msg.ApplicationProperties)
	meta = append(meta, member{"ApplicationProperties", props}, member{"UserProperties", props})
	str("SessionId", msg.SessionID)
	str("ReplyToSessionId", msg.ReplyToSessionID)
	str("PartitionKey", msg.PartitionKey)
	meta = append(meta, member{"sys", sys.object()})

	return marshal(object{
		{"Data", object{{t.BindingName, data}}},
		{"Metadata", meta},
	})
}

// applicationProperties renders AMQP application properties as Json.NET
// renders the .NET SDK's dictionary: an object of plain JSON values.
func applicationProperties(in map[string]any) object {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(object, 0, len(in))
	for _, k := range keys {
		out = append(out, member{k, propertyValue(in[k])})
	}
	return out
}

func propertyValue(x any) any {
	if t, ok := x.(time.Time); ok {
		return t.UTC().Format(netUTC) // an AMQP timestamp is a UTC DateTime in .NET
	}
	// A UUID (amqp.UUID is a named [16]byte) is a Guid in .NET, which
	// Json.NET writes as a string, not as an array of numbers.
	if rv := reflect.ValueOf(x); rv.Kind() == reflect.Array && rv.Len() == 16 && rv.Type().Elem().Kind() == reflect.Uint8 {
		var u uuid.UUID
		reflect.Copy(reflect.ValueOf(u[:]), rv)
		return u.String()
	}
	if _, err := json.Marshal(x); err != nil {
		return fmt.Sprint(x)
	}
	return x
}

// scheduleStatus is the timer monitor's record, as TimerInfo.ScheduleStatus.
type scheduleStatus struct {
	Last, Next, LastUpdated time.Time
}

// encodeTimer builds the invocation body for a timer occurrence.
func encodeTimer(t *TimerTrigger, status *scheduleStatus, pastDue bool, sys sysData) ([]byte, error) {
	var st any // nil marshals as null: no monitor, or no history yet
	if status != nil {
		st = object{
			{"Last", status.Last.UTC().Format(netOffset)},
			{"Next", status.Next.UTC().Format(netOffset)},
			{"LastUpdated", status.LastUpdated.UTC().Format(netOffset)},
		}
	}
	info := object{
		{"Schedule", object{{"AdjustForDST", true}}},
		{"ScheduleStatus", st},
		{"IsPastDue", pastDue},
	}
	return marshal(object{
		{"Data", object{{t.BindingName, info}}},
		{"Metadata", object{{"sys", sys.object()}}},
	})
}
