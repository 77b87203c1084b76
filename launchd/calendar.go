package launchd

import (
	"strconv"
	"strings"
	"time"
)

// CalendarInterval is one entry of StartCalendarInterval: the job starts at
// every minute that matches all the fields set. A nil field is a wildcard;
// the zero CalendarInterval matches every minute. The meaning is cron's
// (crontab(5)), which launchd.plist(5) refers to, including its one
// surprise: when both Day and Weekday are set, a minute matches if either
// one does.
type CalendarInterval struct {
	Minute  *int // 0-59
	Hour    *int // 0-23
	Day     *int // day of the month, 1-31
	Weekday *int // 0-7; 0 and 7 are both Sunday
	Month   *int // 1-12
}

// String returns the interval in crontab(5) order, "minute hour day month
// weekday", with * for a wildcard: "30 2 * * 7".
func (c CalendarInterval) String() string {
	f := func(p *int) string {
		if p == nil {
			return "*"
		}
		return strconv.Itoa(*p)
	}
	return strings.Join([]string{f(c.Minute), f(c.Hour), f(c.Day), f(c.Month), f(c.Weekday)}, " ")
}

// valid reports whether every field set is in range.
func (c CalendarInterval) valid() bool {
	in := func(p *int, lo, hi int) bool { return p == nil || lo <= *p && *p <= hi }
	return in(c.Minute, 0, 59) && in(c.Hour, 0, 23) && in(c.Day, 1, 31) &&
		in(c.Weekday, 0, 7) && in(c.Month, 1, 12)
}

// maxSearchDays bounds Next's search. The rarest valid interval, February
// 29, recurs at most eight years apart (2096 to 2104).
const maxSearchDays = 9 * 366

// Next returns the first minute after the instant after that matches c, in
// after's location (wall clock; time.Local for the system's zone). It
// returns the zero Time if no minute matches within nine years, which
// happens only for an interval that validation would reject (such as Day 31
// of Month 4) or that has a field out of range.
//
// Daylight-saving changes follow the wall clock: a minute that does not
// exist on a day (skipped by a spring-forward) is not matched that day, and
// a minute that exists twice (a fall-back) matches once.
func (c CalendarInterval) Next(after time.Time) time.Time {
	if !c.valid() {
		return time.Time{}
	}
	loc := after.Location()
	y, m, d := after.Date()
	// Walk calendar days in UTC, where every day has 24 hours, and build
	// each candidate in loc.
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	for range maxSearchDays {
		if c.dayMatches(day) {
			if t, ok := c.firstInDay(day, loc, after); ok {
				return t
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}
}

// dayMatches applies Month, Day and Weekday to a calendar day.
func (c CalendarInterval) dayMatches(day time.Time) bool {
	if c.Month != nil && time.Month(*c.Month) != day.Month() {
		return false
	}
	dayOK := c.Day == nil || *c.Day == day.Day()
	weekdayOK := c.Weekday == nil || time.Weekday(*c.Weekday%7) == day.Weekday()
	if c.Day != nil && c.Weekday != nil {
		return dayOK || weekdayOK
	}
	return dayOK && weekdayOK
}

// firstInDay returns the first minute of the calendar day that matches Hour
// and Minute, exists in loc, and comes after after.
func (c CalendarInterval) firstInDay(day time.Time, loc *time.Location, after time.Time) (time.Time, bool) {
	hours, minutes := span(c.Hour, 23), span(c.Minute, 59)
	y, m, d := day.Date()
	for h := hours[0]; h <= hours[1]; h++ {
		for mi := minutes[0]; mi <= minutes[1]; mi++ {
			t := time.Date(y, m, d, h, mi, 0, 0, loc)
			if t.Day() != d || t.Hour() != h || t.Minute() != mi {
				continue // skipped by a daylight-saving change
			}
			if t.After(after) {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// span returns the range of values a field matches: itself, or 0 to max.
func span(p *int, max int) [2]int {
	if p == nil {
		return [2]int{0, max}
	}
	return [2]int{*p, *p}
}
