package ncrontab

import (
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"0 */5 * * * *", "0 0 */6 * * *", "0 30 9 * * MON-FRI", "1-5/2,7 0 0 1 JAN-MAR sun",
		"0 0 0 29 2 *", "0 0 0 30 2 *", "*/0 * * * * *", "5/ * * * * *", "1,,2 * * * * *",
	} {
		f.Add(seed)
	}
	base := date("2026-05-17T08:09:10Z")
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr)
		if err != nil {
			return
		}
		n := s.Next(base)
		if n.IsZero() {
			return
		}
		if !n.After(base) {
			t.Fatalf("Next(%s) = %s, not after", base, n)
		}
		if !s.Matches(n) {
			t.Fatalf("Next(%s) = %s, which does not match %q", base, n, expr)
		}
		if again := s.Next(n.Add(-time.Second)); !again.Equal(n) {
			t.Fatalf("Next(%s) = %s, want %s", n.Add(-time.Second), again, n)
		}
		if _, err := Parse(s.String()); err != nil {
			t.Fatalf("String() %q does not parse: %v", s.String(), err)
		}
	})
}
