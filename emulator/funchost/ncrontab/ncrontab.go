package ncrontab

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed six-field NCRONTAB expression.
type Schedule struct {
	expr  string
	field [numFields]uint64 // bit v set when value v is allowed
}

const (
	second = iota
	minute
	hour
	day
	month
	weekday
	numFields
)

type fieldSpec struct {
	name     string
	min, max int
	names    []string // full names, matched by prefix; index 0 is min
}

var specs = [numFields]fieldSpec{
	{name: "second", min: 0, max: 59},
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{
		"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}},
	{name: "day-of-week", min: 0, max: 6, names: []string{
		"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}},
}

// horizon bounds the search for the next occurrence. The rarest satisfiable
// schedule (29 February on a given weekday) recurs within 28 years, or 40 when
// the search starts just after a century year that is not a leap year.
const horizon = 50

// Parse parses a six-field NCRONTAB expression. Fields are separated by
// spaces or tabs.
func Parse(expr string) (*Schedule, error) {
	tokens := strings.Fields(expr)
	if len(tokens) != numFields {
		return nil, fmt.Errorf("ncrontab %q: want 6 fields (second minute hour day month day-of-week), got %d", expr, len(tokens))
	}
	s := &Schedule{expr: strings.Join(tokens, " ")}
	for i, tok := range tokens {
		set, err := parseField(specs[i], tok)
		if err != nil {
			return nil, fmt.Errorf("ncrontab %q: %s field %q: %w", expr, specs[i].name, tok, err)
		}
		s.field[i] = set
	}
	return s, nil
}

// MustParse is Parse for expressions known to be valid; it panics otherwise.
func MustParse(expr string) *Schedule {
	s, err := Parse(expr)
	if err != nil {
		panic(err)
	}
	return s
}

// String returns the expression as parsed, with fields single-spaced.
func (s *Schedule) String() string { return s.expr }

func parseField(spec fieldSpec, tok string) (uint64, error) {
	var set uint64
	for _, elem := range strings.Split(tok, ",") {
		if elem == "" {
			return 0, fmt.Errorf("empty list element")
		}
		bitsForElem, err := parseElem(spec, elem)
		if err != nil {
			return 0, err
		}
		set |= bitsForElem
	}
	return set, nil
}

func parseElem(spec fieldSpec, elem string) (uint64, error) {
	step := 1
	body := elem
	if i := strings.IndexByte(elem, '/'); i >= 0 {
		if i == 0 {
			return 0, fmt.Errorf("%q: a step needs a value, range or * before the /", elem)
		}
		n, err := strconv.Atoi(elem[i+1:])
		if err != nil {
			return 0, fmt.Errorf("%q: step %q is not a number", elem, elem[i+1:])
		}
		if n < 1 {
			return 0, fmt.Errorf("%q: step must be at least 1", elem)
		}
		step, body = n, elem[:i]
	}
	lo, hi := spec.min, spec.max
	switch {
	case body == "*":
	case strings.IndexByte(body, '-') > 0:
		i := strings.IndexByte(body, '-')
		a, err := parseValue(spec, body[:i])
		if err != nil {
			return 0, err
		}
		b, err := parseValue(spec, body[i+1:])
		if err != nil {
			return 0, err
		}
		if a > b { // NCrontab swaps a reversed range
			a, b = b, a
		}
		lo, hi = a, b
	default:
		v, err := parseValue(spec, body)
		if err != nil {
			return 0, err
		}
		lo = v
		if step == 1 {
			hi = v
		}
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << uint(v)
	}
	return set, nil
}

func parseValue(spec fieldSpec, s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty value")
	}
	if s[0] >= '0' && s[0] <= '9' {
		v, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		if v < spec.min || v > spec.max {
			return 0, fmt.Errorf("%d is out of range %d-%d", v, spec.min, spec.max)
		}
		return v, nil
	}
	if spec.names == nil {
		return 0, fmt.Errorf("%q is not a number between %d and %d", s, spec.min, spec.max)
	}
	for i, name := range spec.names {
		if len(s) <= len(name) && strings.EqualFold(name[:len(s)], s) {
			return spec.min + i, nil
		}
	}
	return 0, fmt.Errorf("%q is not a known %s name (use one of %s)", s, spec.name, strings.Join(spec.names, ", "))
}

// Matches reports whether t, in UTC and truncated to the second, is an
// occurrence of the schedule.
func (s *Schedule) Matches(t time.Time) bool {
	t = t.UTC()
	return s.has(month, int(t.Month())) && s.has(day, t.Day()) &&
		s.has(weekday, int(t.Weekday())) && s.has(hour, t.Hour()) &&
		s.has(minute, t.Minute()) && s.has(second, t.Second())
}

func (s *Schedule) has(f, v int) bool { return s.field[f]&(1<<uint(v)) != 0 }

// next returns the smallest allowed value >= v in field f, or -1.
func (s *Schedule) next(f, v int) int {
	if v > 63 {
		return -1
	}
	rest := s.field[f] >> uint(v)
	if rest == 0 {
		return -1
	}
	return v + bits.TrailingZeros64(rest)
}

// Next returns the first occurrence strictly after t, in UTC. It returns the
// zero Time when the schedule has no occurrence within fifty years, which
// means it never fires (for example "0 0 0 30 2 *").
func (s *Schedule) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second).Add(time.Second)
	limit := t.Year() + horizon
	y, mo, d := t.Date()
	h, mi, se := t.Clock()
	for y <= limit {
		// Each step either accepts the current value of a field or moves to the
		// next candidate and resets the smaller fields, as an odometer would.
		if m := s.next(month, int(mo)); m < 0 {
			y, mo, d, h, mi, se = y+1, 1, 1, 0, 0, 0
			continue
		} else if m != int(mo) {
			mo, d, h, mi, se = time.Month(m), 1, 0, 0, 0
		}
		dim := daysIn(y, mo)
		if d > dim {
			mo, d, h, mi, se = mo+1, 1, 0, 0, 0
			if mo > 12 {
				y, mo = y+1, 1
			}
			continue
		}
		wd := int(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Weekday())
		if !s.has(day, d) || !s.has(weekday, wd) {
			d, h, mi, se = d+1, 0, 0, 0
			continue
		}
		if nh := s.next(hour, h); nh < 0 {
			d, h, mi, se = d+1, 0, 0, 0
			continue
		} else if nh != h {
			h, mi, se = nh, 0, 0
		}
		if nm := s.next(minute, mi); nm < 0 {
			h, mi, se = h+1, 0, 0
			if h > 23 {
				d, h = d+1, 0
			}
			continue
		} else if nm != mi {
			mi, se = nm, 0
		}
		if ns := s.next(second, se); ns < 0 {
			mi, se = mi+1, 0
			if mi > 59 {
				h, mi = h+1, 0
				if h > 23 {
					d, h = d+1, 0
				}
			}
			continue
		} else {
			se = ns
		}
		return time.Date(y, mo, d, h, mi, se, 0, time.UTC)
	}
	return time.Time{}
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
