// Package servicebusemu is a local Azure Service Bus: an AMQP 1.0 broker in pure
// Go that the unmodified azservicebus SDK (and @azure/service-bus on Node)
// talk to over plain TCP, as they do with UseDevelopmentEmulator=true. It is
// shaped like httptest.Server: NewServer listens on a random loopback port,
// ConnectionString returns what the SDK needs, Close stops it. Entities come
// from a Config (the official emulator's Config.json schema via LoadConfig,
// but with cloud defaults: LockDuration 1 min, MaxDeliveryCount 10, a 10 min
// duplicate-detection window). Its test controls are the shared ones of
// package emu (InjectFault, Throttle, SetLatency, Stats, State, Reset, …),
// targeting the Op constants: a faulted send or settlement gets a rejected
// outcome with an AMQP condition, a faulted $management or $cbs request a
// reply with the fault's status, a throttle Service Bus's server-busy error,
// and a latency delays that one answer, not the connection. Reset empties
// every entity but keeps the entities and the connections. Tests also steer it
// with DropConnections, DetachLinks and ExpireLocks, inspect it with Counts
// and DeadLetters, and drive lock expiry, TTL and schedules through
// Options.Now; Handler serves all of it over HTTP under /_emu/servicebus/ for
// azemu.
//
// # What is emulated
//
// SASL (ANONYMOUS, MSSBCBS and EXTERNAL all succeed: the key is proven via
// CBS); subscription rules with correlation and SQL filters (see below);
// $cbs put-token with SAS verification (key name, HMAC and expiry
// against the wall clock; a bad token gets 401 and a token for a missing
// entity 404, as from Azure); sessions with windows, links with credit and
// drain, multi-frame transfers both ways, max-frame-size 64 KiB, heartbeats
// at half the client's idle-timeout and a 60 s idle-timeout of our own
// (Options.IdleTimeout); queues, topics with subscriptions, dead-letter
// queues; PeekLock and ReceiveAndDelete; lock tokens as the delivery tag in
// .NET byte order plus the x-opt-lock-token delivery annotation; complete,
// abandon (delivery count + 1), release (no increment), defer, dead-letter
// with reason and description; dead-lettering with MaxDeliveryCountExceeded
// and "Message could not be consumed after N delivery attempts."; lock expiry
// (counted as an attempt); TTL with optional dead-lettering
// (TTLExpiredException); scheduled messages and cancellation; duplicate
// detection by MessageId; batches (format 0x80013700); and the $management
// operations renew-lock, peek-message, schedule-message,
// cancel-scheduled-message, update-disposition and
// receive-by-sequence-number, with the exact AMQP types the SDKs assert on.
// Sessions: session receivers for a named or the next available session
// (waiting up to com.microsoft:timeout), session locks with expiry and
// renew-session-lock, session state, and get-message-sessions.
// A malformed or oversize frame or a protocol violation closes only the
// offending connection, with an AMQP error.
//
// # Where it differs from Azure Service Bus
//
//   - Sessions: a message received through a session is locked by the session
//     lock, as in Azure (renewing the session lock keeps it; losing or closing
//     the session releases it, counting a delivery), but a receiver learns
//     that its session lock expired only on its next receive (detach with
//     com.microsoft:session-lock-lost). Idle session receivers are never
//     disconnected. Session entries are kept for every session id ever used.
//   - Subscription rules are fixed by the Config (no rule management over
//     AMQP) and rule actions are refused. Correlation filters are exact. SQL
//     filters support a subset: comparisons (=, <>, !=, <, <=, >, >=) of
//     properties (sys.Label, sys.MessageId, ... or application properties,
//     optionally user.-prefixed or [bracketed]) with string, number and
//     boolean constants; AND, OR, NOT and parentheses with SQL's unknown for
//     missing properties; IS [NOT] NULL, [NOT] IN (...), [NOT] LIKE with
//     ESCAPE, and EXISTS(...). Arithmetic and functions are refused when the
//     Config is loaded.
//   - No auto-forwarding (ForwardTo is refused in Config; the
//     $Transfer/$DeadLetterQueue exists and stays empty), transactions,
//     partitioning, WebSockets, TLS, persistence, quotas, throttling or the
//     HTTP/ATOM administration API.
//   - Entra (jwt) CBS tokens are verified only with Options.Issuer (then:
//     signature, lifetime, audience https://servicebus.azure.net and tenant,
//     a bad one 401 at put-token with the emulator's own description) and
//     authorized only with Options.Authorizer: the token's principal needs a
//     role granting .../messages/send/action (sender links, schedule and
//     cancel) or .../messages/receive/action (receiver links, every other
//     $management request) at the entity's ARM scope below
//     Options.ResourceID, checked when the link attaches or the request is
//     made; a refusal is amqp:unauthorized-access with "Unauthorized access.
//     'Send' claim(s) are required to perform this operation. Resource:
//     'sb://<host>/<entity>'. TrackingId:…", as the service words it. Role
//     changes apply at once (no propagation delay), and Manage (entity
//     administration) is never asked for. Without an Issuer, Entra tokens
//     are accepted unverified and hold every right, like a SAS key. Token
//     expiry is checked at put-token only; links are never detached when it
//     passes.
//   - A MessageId or SessionId over 128 characters is refused, as the
//     service's quota says (the SDKs do not check): the transfer is rejected
//     with com.microsoft:argument-out-of-range and a description of the
//     emulator's own wording, which the Go SDK treats as a connection fault
//     and retries before giving up. The service's exact answer is not on
//     record.
//   - Limits: 256 KiB per message (the Standard tier), 256 sessions per
//     connection (channel-max 255), 256 links per session (handle-max 255),
//     4 MiB of unfinished incoming transfers and 16 MiB of replies not yet
//     taken per connection, 4 MiB of messages per peek reply; entities have
//     no size limit.
//   - Sequence numbers start at 1 per entity; a subscription numbers its own
//     copies, scheduled topic messages get topic-level numbers, and
//     dead-lettered messages keep theirs. x-opt-enqueue-sequence-number
//     equals the sequence number.
//   - Messages sent without a MessageId get a random 32-hex-digit one.
//   - Expiry, scheduling and lock deadlines are checked every 10 ms, so they
//     take effect up to 10 ms after they pass. Locked and deferred messages
//     do not expire; dead-lettering a message in a dead-letter queue leaves it
//     there with the new reason.
//   - Locks survive link and connection loss and run out on their own, as on
//     Azure; messages taken for a link but never transferred are released.
//
// # Performance
//
// Measured on the 2-core development machine (shared with other builds, so
// the spread is wide), SDK and emulator on the same cores, 512-byte messages:
//
//	go test -run XXX -bench . -benchtime 20000x -count 3 ./emulator/servicebusemu/
//
//	BenchmarkSend                          20 000–30 000 msgs/s (one sender; each send awaits its disposition)
//	BenchmarkReceiveComplete/receivers=1   15 000–19 000 msgs/s (PeekLock receive + complete)
//	BenchmarkReceiveComplete/receivers=16  13 000–21 000 msgs/s (16 receivers on one connection)
//
// # Structure
//
// internal/amqp is the codec (types, frames, performatives; fuzzed). One
// goroutine per connection owns that connection's sessions and links; a
// reader goroutine only decodes frames. The broker keeps every entity behind
// one mutex with short, I/O-free critical sections; messages are encoded in
// the connection goroutines (go-amqp's public Message.MarshalBinary and
// UnmarshalBinary handle message sections). A connection waiting for
// messages registers with the entity and is woken when some arrive.
package servicebusemu
