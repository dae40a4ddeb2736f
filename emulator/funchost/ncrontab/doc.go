// Package ncrontab parses the six-field NCRONTAB expressions that Azure
// Functions timer triggers use ("{second} {minute} {hour} {day} {month}
// {day-of-week}") and computes their next occurrence.
//
// It follows the NCrontab library the Functions host is built on: `*`, lists,
// ranges (a reversed range is swapped), steps on `*`, on ranges and on single
// values (`5/15` means 5 to the field's maximum, every 15), month and weekday
// names matched case-insensitively by prefix (`JAN`, `Mon`, `Friday`), Sunday
// is 0 and 7 is out of range, and day-of-month AND day-of-week must both match
// (Vixie cron ORs them). It is stricter than NCrontab in one place: a step of 0
// or less is an error, where NCrontab silently treats it as 1. Schedules are
// evaluated in UTC, as the host does unless WEBSITE_TIME_ZONE is set.
package ncrontab
