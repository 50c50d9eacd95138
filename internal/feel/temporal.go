package feel

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// zoneKind says how a time or date-time is anchored.
type zoneKind uint8

const (
	zoneLocal  zoneKind = iota // no offset: a wall-clock value
	zoneOffset                 // fixed offset (Z or ±hh:mm)
	zoneID                     // IANA zone id (@Europe/Paris)
)

// Date is a FEEL date. t is midnight UTC of that day.
type Date struct{ t time.Time }

// DateTime is a FEEL date and time. For zoneLocal, t holds the wall clock in UTC.
type DateTime struct {
	t    time.Time
	zone zoneKind
}

// Time is a FEEL time of day.
type Time struct {
	ns   int64 // nanoseconds since midnight, wall clock
	zone zoneKind
	off  int            // seconds east of UTC, for zoneOffset
	loc  *time.Location // for zoneID
}

// DayTimeDuration is a FEEL days-and-time duration, held as seconds.
type DayTimeDuration struct{ s *apd.Decimal }

// YearMonthDuration is a FEEL years-and-months duration, held as months.
type YearMonthDuration struct{ m int64 }

const nsPerDay = int64(24 * time.Hour)

func dtFromNanos(ns int64) DayTimeDuration {
	d := apd.New(ns, -9)
	return DayTimeDuration{s: d}
}

func dtFromSeconds(s *apd.Decimal) DayTimeDuration { return DayTimeDuration{s: s} }

func (d DayTimeDuration) secs() *apd.Decimal {
	if d.s == nil {
		return apd.New(0, 0)
	}
	return d.s
}

// nanos converts to integer nanoseconds when it fits.
func (d DayTimeDuration) nanos() (int64, bool) {
	var n apd.Decimal
	if _, err := decCtx.Mul(&n, d.secs(), apd.New(1, 9)); err != nil {
		return 0, false
	}
	var i apd.Decimal
	if _, err := decCtx.RoundToIntegralValue(&i, &n); err != nil {
		return 0, false
	}
	v, err := i.Int64()
	if err != nil {
		return 0, false
	}
	return v, true
}

func (d DayTimeDuration) String() string {
	s := d.secs()
	neg := s.Negative && !s.IsZero()
	var abs apd.Decimal
	abs.Abs(s)
	// Split into whole seconds and the fraction.
	var whole, frac apd.Decimal
	decCtx.Floor(&whole, &abs)
	decCtx.Sub(&frac, &abs, &whole)
	w, err := whole.Int64()
	if err != nil {
		// Too large for the usual layout; fall back to seconds only.
		return sign(neg) + "PT" + formatNumber(&abs) + "S"
	}
	days := w / 86400
	w %= 86400
	h, m, sec := w/3600, (w%3600)/60, w%60
	var b strings.Builder
	b.WriteString(sign(neg))
	b.WriteString("P")
	if days != 0 {
		b.WriteString(strconv.FormatInt(days, 10))
		b.WriteString("D")
	}
	if h != 0 || m != 0 || sec != 0 || !frac.IsZero() || days == 0 {
		b.WriteString("T")
		if h != 0 {
			b.WriteString(strconv.FormatInt(h, 10) + "H")
		}
		if m != 0 {
			b.WriteString(strconv.FormatInt(m, 10) + "M")
		}
		if sec != 0 || !frac.IsZero() || (h == 0 && m == 0) {
			var ss apd.Decimal
			decCtx.Add(&ss, apd.New(sec, 0), &frac)
			b.WriteString(formatNumber(&ss) + "S")
		}
	}
	return b.String()
}

func sign(neg bool) string {
	if neg {
		return "-"
	}
	return ""
}

func (d YearMonthDuration) String() string {
	m := d.m
	neg := m < 0
	if neg {
		m = -m
	}
	y, mm := m/12, m%12
	s := sign(neg) + "P"
	if y != 0 {
		s += strconv.FormatInt(y, 10) + "Y"
	}
	if mm != 0 || y == 0 {
		s += strconv.FormatInt(mm, 10) + "M"
	}
	return s
}

func formatYear(y int) string {
	if y < 0 {
		return "-" + fmt.Sprintf("%04d", -y)
	}
	return fmt.Sprintf("%04d", y)
}

func (d Date) String() string {
	y, m, dd := d.t.Date()
	return formatYear(y) + fmt.Sprintf("-%02d-%02d", int(m), dd)
}

func formatClock(h, m, s, ns int) string {
	out := fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	if ns != 0 {
		f := strings.TrimRight(fmt.Sprintf("%09d", ns), "0")
		out += "." + f
	}
	return out
}

func formatOffset(off int) string {
	if off == 0 {
		return "Z"
	}
	sg := "+"
	if off < 0 {
		sg = "-"
		off = -off
	}
	s := fmt.Sprintf("%s%02d:%02d", sg, off/3600, (off%3600)/60)
	if off%60 != 0 {
		s += fmt.Sprintf(":%02d", off%60)
	}
	return s
}

func (d DateTime) String() string {
	y, mo, dd := d.t.Date()
	s := formatYear(y) + fmt.Sprintf("-%02d-%02dT", int(mo), dd) + formatClock(d.t.Hour(), d.t.Minute(), d.t.Second(), d.t.Nanosecond())
	switch d.zone {
	case zoneOffset:
		_, off := d.t.Zone()
		s += formatOffset(off)
	case zoneID:
		s += "@" + d.t.Location().String()
	}
	return s
}

func (t Time) String() string {
	ns := t.ns
	s := formatClock(int(ns/int64(time.Hour)), int(ns/int64(time.Minute)%60), int(ns/int64(time.Second)%60), int(ns%int64(time.Second)))
	switch t.zone {
	case zoneOffset:
		s += formatOffset(t.off)
	case zoneID:
		s += "@" + t.loc.String()
	}
	return s
}

// offsetSeconds gives the UTC offset of a zoned time (for zone ids, as of today).
func (t Time) offsetSeconds() int {
	switch t.zone {
	case zoneOffset:
		return t.off
	case zoneID:
		_, off := time.Now().In(t.loc).Zone()
		return off
	}
	return 0
}

var (
	reDate     = regexp.MustCompile(`^(-?(?:\d{4}|[1-9]\d{4,8}))-(\d{2})-(\d{2})$`)
	reTime     = regexp.MustCompile(`^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|z|[+-]\d{2}:\d{2}(?::\d{2})?|@[A-Za-z0-9_+\-/]+)?$`)
	reDuration = regexp.MustCompile(`^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?$`)
)

func parseDate(s string) (Date, bool) {
	m := reDate.FindStringSubmatch(s)
	if m == nil {
		return Date{}, false
	}
	y, err1 := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	d, _ := strconv.Atoi(m[3])
	if err1 != nil {
		return Date{}, false
	}
	return makeDate(y, mo, d)
}

func makeDate(y, mo, d int) (Date, bool) {
	if mo < 1 || mo > 12 || d < 1 || d > 31 || y < -999999999 || y > 999999999 {
		return Date{}, false
	}
	t := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return Date{}, false
	}
	return Date{t: t}, true
}

type clock struct {
	ns   int64
	zone zoneKind
	off  int
	loc  *time.Location
}

func parseClock(s string) (clock, bool) {
	m := reTime.FindStringSubmatch(s)
	if m == nil {
		return clock{}, false
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	se, _ := strconv.Atoi(m[3])
	if h > 23 || mi > 59 || se > 59 {
		if !(h == 24 && mi == 0 && se == 0) {
			return clock{}, false
		}
	}
	var ns int64
	if m[4] != "" {
		f := m[4][1:]
		if len(f) > 9 {
			f = f[:9]
		}
		f += strings.Repeat("0", 9-len(f))
		n, _ := strconv.ParseInt(f, 10, 64)
		ns = n
	}
	c := clock{ns: int64(h)*int64(time.Hour) + int64(mi)*int64(time.Minute) + int64(se)*int64(time.Second) + ns}
	z := m[5]
	switch {
	case z == "":
	case z == "Z" || z == "z":
		c.zone = zoneOffset
	case z[0] == '@':
		loc, err := loadLocation(z[1:])
		if err != nil {
			return clock{}, false
		}
		c.zone, c.loc = zoneID, loc
	default:
		off, ok := parseOffset(z)
		if !ok {
			return clock{}, false
		}
		c.zone, c.off = zoneOffset, off
	}
	return c, true
}

func parseOffset(z string) (int, bool) {
	sg := 1
	if z[0] == '-' {
		sg = -1
	}
	parts := strings.Split(z[1:], ":")
	h, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(parts[1])
	sec := 0
	if len(parts) > 2 {
		sec, _ = strconv.Atoi(parts[2])
	}
	if h > 18 || mi > 59 || sec > 59 {
		return 0, false
	}
	return sg * (h*3600 + mi*60 + sec), true
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" || strings.Contains(name, "..") || name == "Local" {
		return nil, fmt.Errorf("bad zone")
	}
	if name == "UTC" || name == "Z" {
		return time.UTC, nil
	}
	if l, ok := locCache.Load(name); ok {
		return l.(*time.Location), nil
	}
	// LoadLocation reads the zone database each time; only valid names are cached,
	// so the cache is bounded by the database.
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locCache.Store(name, l)
	return l, nil
}

var locCache sync.Map

func parseTime(s string) (Time, bool) {
	c, ok := parseClock(s)
	if !ok || c.ns >= nsPerDay && c.ns != nsPerDay {
		return Time{}, false
	}
	if c.ns == nsPerDay {
		c.ns = 0
	}
	return Time{ns: c.ns, zone: c.zone, off: c.off, loc: c.loc}, true
}

func parseDateTime(s string) (DateTime, bool) {
	i := strings.IndexAny(s, "Tt")
	if i < 0 {
		return DateTime{}, false
	}
	d, ok := parseDate(s[:i])
	if !ok {
		return DateTime{}, false
	}
	c, ok := parseClock(s[i+1:])
	if !ok {
		return DateTime{}, false
	}
	return combine(d, c), true
}

func combine(d Date, c clock) DateTime {
	y, mo, dd := d.t.Date()
	ns := c.ns
	var loc *time.Location
	switch c.zone {
	case zoneLocal:
		loc = time.UTC
	case zoneOffset:
		loc = fixedZone(c.off)
	case zoneID:
		loc = c.loc
	}
	t := time.Date(y, mo, dd, int(ns/int64(time.Hour)), int(ns/int64(time.Minute)%60), int(ns/int64(time.Second)%60), int(ns%int64(time.Second)), loc)
	return DateTime{t: t, zone: c.zone}
}

func fixedZone(off int) *time.Location {
	if off == 0 {
		return time.FixedZone("Z", 0)
	}
	return time.FixedZone("", off)
}

func parseDuration(s string) (Value, bool) {
	m := reDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || s == "-P" || strings.HasSuffix(s, "T") {
		return nil, false
	}
	neg := m[1] == "-"
	hasYM := m[2] != "" || m[3] != ""
	hasDT := m[4] != "" || m[5] != "" || m[6] != "" || m[7] != ""
	if hasYM && hasDT {
		return nil, false
	}
	if hasYM {
		y, err1 := strconv.ParseInt(orZero(m[2]), 10, 64)
		mo, err2 := strconv.ParseInt(orZero(m[3]), 10, 64)
		if err1 != nil || err2 != nil || y > 1e12 || mo > 1e12 {
			return nil, false
		}
		t := y*12 + mo
		if neg {
			t = -t
		}
		return YearMonthDuration{m: t}, true
	}
	total := apd.New(0, 0)
	add := func(txt string, mult int64) bool {
		if txt == "" {
			return true
		}
		d := decFromString(txt)
		if d == nil {
			return false
		}
		var p apd.Decimal
		decCtx.Mul(&p, d, apd.New(mult, 0))
		decCtx.Add(total, total, &p)
		return true
	}
	if !add(m[4], 86400) || !add(m[5], 3600) || !add(m[6], 60) || !add(m[7], 1) {
		return nil, false
	}
	if neg {
		total.Neg(total)
	}
	return DayTimeDuration{s: total}, true
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// parseTemporal reads an @"..." literal.
func parseTemporal(s string) Value {
	if v, ok := parseDuration(s); ok {
		return v
	}
	if d, ok := parseDate(s); ok {
		return d
	}
	if t, ok := parseTime(s); ok {
		return t
	}
	if dt, ok := parseDateTime(s); ok {
		return dt
	}
	return nil
}

// addMonths adds months the way java.time does: the day is clamped to the month's end.
func addMonths(t time.Time, months int64) time.Time {
	y, m, d := t.Date()
	total := int64(y)*12 + int64(m-1) + months
	ny := total / 12
	nm := total % 12
	if nm < 0 {
		nm += 12
		ny--
	}
	last := time.Date(int(ny), time.Month(nm+2), 0, 0, 0, 0, 0, time.UTC).Day()
	if d > last {
		d = last
	}
	return time.Date(int(ny), time.Month(nm+1), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

func (d DateTime) date() Date {
	y, m, dd := d.t.Date()
	return Date{t: time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)}
}

func (d DateTime) clock() Time {
	t := d.t
	ns := int64(t.Hour())*int64(time.Hour) + int64(t.Minute())*int64(time.Minute) + int64(t.Second())*int64(time.Second) + int64(t.Nanosecond())
	tm := Time{ns: ns, zone: d.zone}
	switch d.zone {
	case zoneOffset:
		_, tm.off = t.Zone()
	case zoneID:
		tm.loc = t.Location()
	}
	return tm
}

func dateToDateTime(d Date) DateTime { return DateTime{t: d.t, zone: zoneLocal} }

// addDT adds a days-and-time duration to an instant, nil when out of range.
func addDTToTime(t time.Time, d DayTimeDuration, sub bool) (time.Time, bool) {
	ns, ok := d.nanos()
	if !ok {
		// Split into days and the rest to reach far dates.
		var days, rem apd.Decimal
		decCtx.QuoInteger(&days, d.secs(), apd.New(86400, 0))
		decCtx.Rem(&rem, d.secs(), apd.New(86400, 0))
		dn, err := days.Int64()
		if err != nil || dn > 1e12 || dn < -1e12 {
			return time.Time{}, false
		}
		rn, ok := dtFromSeconds(&rem).nanos()
		if !ok {
			return time.Time{}, false
		}
		if sub {
			dn, rn = -dn, -rn
		}
		return t.AddDate(0, 0, int(dn)).Add(time.Duration(rn)), true
	}
	if sub {
		ns = -ns
	}
	return t.Add(time.Duration(ns)), true
}

// diffTimes returns a-b as a duration.
func diffTimes(a, b time.Time) DayTimeDuration {
	// time.Sub saturates after ~292 years; go through seconds to stay exact.
	s := a.Unix() - b.Unix()
	ns := int64(a.Nanosecond() - b.Nanosecond())
	var r apd.Decimal
	decCtx.Add(&r, apd.New(s, 0), apd.New(ns, -9))
	return DayTimeDuration{s: &r}
}

// compareTemporal orders two temporal values of the same kind; ok is false when they
// cannot be compared.
func compareTemporal(a, b Value) (int, bool) {
	switch x := a.(type) {
	case Date:
		switch y := b.(type) {
		case Date:
			return x.t.Compare(y.t), true
		}
	case DateTime:
		y, ok := b.(DateTime)
		if !ok {
			return 0, false
		}
		if (x.zone == zoneLocal) != (y.zone == zoneLocal) {
			return 0, false
		}
		if x.zone == zoneLocal {
			return wall(x.t).Compare(wall(y.t)), true
		}
		return x.t.Compare(y.t), true
	case Time:
		y, ok := b.(Time)
		if !ok {
			return 0, false
		}
		if (x.zone == zoneLocal) != (y.zone == zoneLocal) {
			return 0, false
		}
		an, bn := x.ns, y.ns
		if x.zone != zoneLocal {
			an -= int64(x.offsetSeconds()) * int64(time.Second)
			bn -= int64(y.offsetSeconds()) * int64(time.Second)
		}
		return cmpInt(an, bn), true
	case DayTimeDuration:
		y, ok := b.(DayTimeDuration)
		if !ok {
			return 0, false
		}
		return x.secs().Cmp(y.secs()), true
	case YearMonthDuration:
		y, ok := b.(YearMonthDuration)
		if !ok {
			return 0, false
		}
		return cmpInt(x.m, y.m), true
	}
	return 0, false
}

func wall(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// temporalProperty implements the properties of dates, times and durations (x.year, ...).
func temporalProperty(v Value, name string) (Value, bool) {
	num := func(i int) Value { return decFromInt(int64(i)) }
	switch x := v.(type) {
	case Date:
		switch name {
		case "year":
			return num(x.t.Year()), true
		case "month":
			return num(int(x.t.Month())), true
		case "day":
			return num(x.t.Day()), true
		case "weekday":
			return num(isoWeekday(x.t)), true
		}
	case DateTime:
		if p, ok := temporalProperty(Date{t: x.t}, name); ok {
			return p, true // the date part's properties
		}
		switch name {
		case "hour":
			return num(x.t.Hour()), true
		case "minute":
			return num(x.t.Minute()), true
		case "second":
			return num(x.t.Second()), true
		case "time offset":
			if x.zone == zoneLocal {
				return nil, true
			}
			_, off := x.t.Zone()
			return dtFromNanos(int64(off) * int64(time.Second)), true
		case "timezone":
			if x.zone != zoneID {
				return nil, true
			}
			return x.t.Location().String(), true
		}
	case Time:
		switch name {
		case "hour":
			return num(int(x.ns / int64(time.Hour))), true
		case "minute":
			return num(int(x.ns / int64(time.Minute) % 60)), true
		case "second":
			return num(int(x.ns / int64(time.Second) % 60)), true
		case "time offset":
			if x.zone == zoneLocal {
				return nil, true
			}
			return dtFromNanos(int64(x.offsetSeconds()) * int64(time.Second)), true
		case "timezone":
			if x.zone != zoneID {
				return nil, true
			}
			return x.loc.String(), true
		}
	case DayTimeDuration:
		s := x.secs()
		// Whole seconds, truncated towards zero.
		var tr apd.Decimal
		tc := *decCtx
		tc.Rounding = apd.RoundDown
		tc.RoundToIntegralValue(&tr, s)
		w, err := tr.Int64()
		if err != nil {
			return nil, true
		}
		switch name {
		case "days":
			return num(int(w / 86400)), true
		case "hours":
			return num(int(w % 86400 / 3600)), true
		case "minutes":
			return num(int(w % 3600 / 60)), true
		case "seconds":
			return num(int(w % 60)), true
		}
	case YearMonthDuration:
		switch name {
		case "years":
			return decFromInt(x.m / 12), true
		case "months":
			return decFromInt(x.m % 12), true
		}
	}
	return nil, false
}

func isoWeekday(t time.Time) int {
	w := int(t.Weekday())
	if w == 0 {
		return 7
	}
	return w
}
