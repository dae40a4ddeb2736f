package funchost

import "time"

// Clock is the time source for timer schedules, lock renewal and the
// timestamps in invocation payloads. Tests inject a fake to fire timers and
// renew locks without waiting.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has elapsed on this clock.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
