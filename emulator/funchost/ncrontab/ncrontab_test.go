package ncrontab

import (
	"strings"
	"testing"
	"time"
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, expr, want string
	}{
		{"FiveFields", "0 * * * *", "want 6 fields"},
		{"SevenFields", "0 0 * * * * *", "want 6 fields"},
		{"Empty", "", "want 6 fields"},
		{"SecondTooBig", "60 * * * * *", "second field"},
		{"HourTooBig", "0 0 24 * * *", "24 is out of range 0-23"},
		{"DayZero", "0 0 0 0 * *", "0 is out of range 1-31"},
		{"MonthThirteen", "0 0 0 1 13 *", "month field"},
		{"WeekdaySeven", "0 0 0 * * 7", "7 is out of range 0-6"},
		{"StepZero", "*/0 * * * * *", "step must be at least 1"},
		{"StepMissing", "*/ * * * * *", "is not a number"},
		{"StepAlone", "/5 * * * * *", "needs a value"},
		{"EmptyListElement", "1,,2 * * * * *", "empty list element"},
		{"TrailingComma", "1, * * * * *", "empty list element"},
		{"LeadingDash", "-5 * * * * *", "not a number"},
		{"StarRange", "*-5 * * * * *", "not a number"},
		{"NameInSeconds", "MON * * * * *", "not a number"},
		{"UnknownMonth", "0 0 0 1 FOO *", "not a known month name"},
		{"UnknownWeekday", "0 0 0 * * XYZ", "not a known day-of-week name"},
		{"TooLongName", "0 0 0 * * Mondays", "not a known day-of-week name"},
		{"RangeTooBig", "0 0 0 * * 1-9", "9 is out of range"},
		{"Garbage", "a b c d e f", "second field"},
		{"HugeNumber", "99999999999999999999 * * * * *", "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.expr)
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one containing %q", tt.expr, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name, expr, from string
		want             []string // successive occurrences
	}{
		{"EverySecond", "* * * * * *", "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"}},
		{"FromMidSecond", "* * * * * *", "2026-01-01T00:00:00.5Z",
			[]string{"2026-01-01T00:00:01Z"}},
		{"EveryFiveMinutes", "0 */5 * * * *", "2026-01-01T00:03:10Z",
			[]string{"2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"}},
		{"EverySixHours", "0 0 */6 * * *", "2026-03-04T05:59:59Z",
			[]string{"2026-03-04T06:00:00Z", "2026-03-04T12:00:00Z", "2026-03-04T18:00:00Z", "2026-03-05T00:00:00Z"}},
		{"NotTheStartItself", "0 0 0 * * *", "2026-01-01T00:00:00Z",
			[]string{"2026-01-02T00:00:00Z"}},
		{"List", "0 15,45 9 * * *", "2026-01-01T09:20:00Z",
			[]string{"2026-01-01T09:45:00Z", "2026-01-02T09:15:00Z"}},
		{"Range", "0 0 9-11 * * *", "2026-01-01T10:30:00Z",
			[]string{"2026-01-01T11:00:00Z", "2026-01-02T09:00:00Z"}},
		{"ReversedRangeIsSwapped", "0 0 11-9 * * *", "2026-01-01T10:30:00Z",
			[]string{"2026-01-01T11:00:00Z", "2026-01-02T09:00:00Z"}},
		{"RangeWithStep", "0 0 1-10/3 * * *", "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T01:00:00Z", "2026-01-01T04:00:00Z", "2026-01-01T07:00:00Z", "2026-01-01T10:00:00Z", "2026-01-02T01:00:00Z"}},
		{"ValueWithStepRunsToMax", "0 0 20/2 * * *", "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T20:00:00Z", "2026-01-01T22:00:00Z", "2026-01-02T20:00:00Z"}},
		{"WeekdaysByName", "0 30 9 * * MON-FRI", "2026-01-02T10:00:00Z", // a Friday
			[]string{"2026-01-05T09:30:00Z", "2026-01-06T09:30:00Z"}},
		{"WeekdaysByNumber", "0 30 9 * * 1-5", "2026-01-02T10:00:00Z",
			[]string{"2026-01-05T09:30:00Z"}},
		{"SundayIsZero", "0 0 0 * * 0", "2026-01-01T00:00:00Z",
			[]string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
		{"FullAndLowercaseNames", "0 0 0 * * saturday", "2026-01-01T00:00:00Z",
			[]string{"2026-01-03T00:00:00Z"}},
		{"MonthNames", "0 0 0 1 JAN,jul *", "2026-02-01T00:00:00Z",
			[]string{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{"PrefixNameMatchesFirst", "0 0 0 1 Ju *", "2026-01-01T00:00:00Z", // June before July
			[]string{"2026-06-01T00:00:00Z", "2027-06-01T00:00:00Z"}},
		{"DayAndWeekdayAreAnded", "0 0 0 13 * FRI", "2026-01-01T00:00:00Z",
			[]string{"2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z", "2026-11-13T00:00:00Z"}},
		{"Day31SkipsShortMonths", "0 0 0 31 * *", "2026-01-31T00:00:00Z",
			[]string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"}},
		{"LeapDay", "0 0 12 29 2 *", "2026-01-01T00:00:00Z",
			[]string{"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"}},
		{"YearRollover", "0 0 0 1 1 *", "2026-12-31T23:59:59Z",
			[]string{"2027-01-01T00:00:00Z"}},
		{"NonUTCInputIsConverted", "0 0 0 * * *", "2026-01-01T23:30:00-02:00", // 01:30Z on the 2nd
			[]string{"2026-01-03T00:00:00Z"}},
		{"Never", "0 0 0 30 2 *", "2026-01-01T00:00:00Z",
			[]string{"0001-01-01T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			at := date(tt.from)
			for i, w := range tt.want {
				got := s.Next(at)
				if !got.Equal(date(w)) {
					t.Fatalf("occurrence %d of %q after %s = %s, want %s", i, tt.expr, at.Format(time.RFC3339Nano), got.Format(time.RFC3339), w)
				}
				at = got
			}
		})
	}
}

// TestNextAgainstBruteForce checks Next against a second-by-second scan.
func TestNextAgainstBruteForce(t *testing.T) {
	exprs := []string{
		"*/7 * * * * *", "30 */13 * * * *", "0 0 */5 * * *", "5/20 1-3,58 * * * *",
		"0 0 0,12 * * TUE,THU", "0 59 23 28-31 * *", "15 45 22 * * SUN",
	}
	from := date("2026-02-26T21:00:00Z")
	to := from.Add(5 * 24 * time.Hour)
	for _, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			s := MustParse(expr)
			at := from
			for scan := from.Add(time.Second); scan.Before(to); scan = scan.Add(time.Second) {
				if !s.Matches(scan) {
					continue
				}
				if got := s.Next(at); !got.Equal(scan) {
					t.Fatalf("Next(%s) = %s, want %s", at, got, scan)
				}
				at = scan
			}
		})
	}
}

func TestString(t *testing.T) {
	if got := MustParse("0  */5\t* * * *").String(); got != "0 */5 * * * *" {
		t.Errorf("String() = %q", got)
	}
}
