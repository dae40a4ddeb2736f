package funchost

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// .NET TimeSpan text as host.json uses it: [-][d.]hh:mm[:ss[.fffffff]].
var timeSpanRE = regexp.MustCompile(`^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$`)

// parseTimeSpan parses a .NET TimeSpan string such as "00:05:00",
// "1.02:00:00" or "00:00:00.5".
func parseTimeSpan(s string) (time.Duration, error) {
	m := timeSpanRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a TimeSpan (want hh:mm:ss, e.g. \"00:05:00\")", s)
	}
	num := func(x string) int64 {
		if x == "" {
			return 0
		}
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	days, hours, mins, secs := num(m[2]), num(m[3]), num(m[4]), num(m[5])
	if hours > 23 || mins > 59 || secs > 59 {
		return 0, fmt.Errorf("%q is not a TimeSpan: hours must be 0-23, minutes and seconds 0-59", s)
	}
	if days > 10000 {
		return 0, fmt.Errorf("%q is too long", s)
	}
	frac := m[6]
	for len(frac) < 7 {
		frac += "0"
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(hours)*time.Hour +
		time.Duration(mins)*time.Minute + time.Duration(secs)*time.Second +
		time.Duration(num(frac))*100*time.Nanosecond
	if m[1] == "-" {
		d = -d
	}
	return d, nil
}

// formatTimeSpan renders d the way .NET prints a TimeSpan ("00:05:00").
func formatTimeSpan(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	out := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
	if days > 0 {
		out = fmt.Sprintf("%s%d.%02d:%02d:%02d", sign, days, h, m, s)
	}
	if frac := d % time.Second; frac != 0 {
		out += fmt.Sprintf(".%07d", frac/100)
	}
	return out
}
