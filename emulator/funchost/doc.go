// Package funchost runs a staged Azure Functions custom-handler app the way
// the Functions host does, so the handler can be exercised end to end against
// a real Service Bus namespace or the local emulator.
//
// Load reads host.json, every <Name>/function.json and the app settings
// (LoadSettings reads local.settings.json), resolving %NAME% expressions and
// validating everything up front. A Host then starts the handler with the
// host's environment (FUNCTIONS_CUSTOMHANDLER_PORT and friends), polls GET /
// until it answers, restarts it with backoff when it dies, and forwards its
// output to the log. Each serviceBusTrigger function gets a PeekLock receiver
// with maxConcurrentCalls invocations in flight; locks are renewed at half
// their remaining time up to maxAutoLockRenewalDuration. A function with
// isSessionsEnabled instead holds up to maxConcurrentSessions sessions, each
// accepted as the next one with messages, runs each session's messages one at
// a time and in order (SessionId in the metadata), renews the session lock
// while one runs, and lets the session go after sessionIdleTimeout without a
// message; several funchost processes on one namespace share the sessions as
// the host's instances do. No message is taken while the handler is down, and
// a message sent to a port that refuses connections waits for the restarted
// handler instead of costing a delivery. The host's exact
// request is POSTed to /<FunctionName> (strings JSON-encoded twice, numbers
// as strings, null metadata left out, sys added); the message is completed
// on a 2xx JSON answer and abandoned on anything else, including a timeout
// at functionTimeout (default 00:05:00, the Consumption plan's; "-1" means no
// limit). Timer functions fire on their NCRONTAB schedule with the host's
// TimerInfo payload, never overlapping. Options.Clock, Options.OnInvocation,
// Options.OnHandler and Host.FireTimer let tests drive all of it.
//
// Where it differs from the real host: only serviceBusTrigger (cardinality
// one) and timerTrigger functions are supported, and other
// bindings are refused at load; the handler cannot return output bindings;
// prefetchCount is accepted but has no effect; the timer monitor lives in
// memory, so ScheduleStatus is null on the first run after each start and a
// run missed while funchost was down is not detected (IsPastDue is true only
// when the clock jumps past more than one occurrence); schedules are in UTC
// (WEBSITE_TIME_ZONE is ignored) and TimeSpan schedules are refused; the
// opaque metadata objects (MessageActions, MessageSession, Client, ...) are
// left out; session state is not offered to the handler (neither is it by the
// real host to a custom handler); a handler that never becomes ready fails Run
// after three attempts instead of the host recycling itself, while one that
// was ready is restarted for as long as it takes; and an empty or null
// response body fails at once where the host would wait until functionTimeout.
package funchost
