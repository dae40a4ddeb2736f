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
// their remaining time up to maxAutoLockRenewalDuration; the host's exact
// request is POSTed to /<FunctionName> (strings JSON-encoded twice, numbers
// as strings, null metadata left out, sys added); the message is completed
// on a 2xx JSON answer and abandoned on anything else, including a timeout
// at functionTimeout (default 00:05:00, the Consumption plan's; "-1" means no
// limit). Timer functions fire on their NCRONTAB schedule with the host's
// TimerInfo payload, never overlapping. Options.Clock, Options.OnInvocation,
// Options.OnHandler and Host.FireTimer let tests drive all of it.
//
// Where it differs from the real host: only serviceBusTrigger (cardinality
// one, no sessions) and timerTrigger functions are supported, and other
// bindings are refused at load; the handler cannot return output bindings;
// prefetchCount is accepted but has no effect; the timer monitor lives in
// memory, so ScheduleStatus is null on the first run after each start and a
// run missed while funchost was down is not detected (IsPastDue is true only
// when the clock jumps past more than one occurrence); schedules are in UTC
// (WEBSITE_TIME_ZONE is ignored) and TimeSpan schedules are refused; the
// opaque metadata objects (MessageActions, Client, ...) are left out; a
// handler that never becomes ready fails Run after three attempts instead of
// the host recycling itself; and an empty or null response body fails at
// once where the host would wait until functionTimeout.
package funchost
