package mis

import (
	"fmt"
	"strings"
	"time"

	"github.com/suyashkumar/dicom/pkg/dcmtime"
)

// DICOM dates and times (PS3.5 §6.2: DA, TM, DT, and the Timezone Offset From
// UTC (0008,0201)) to dates.xsd date-time.

// ParseDA parses a DICOM DA value ("YYYYMMDD", or the ACR-NEMA form
// "YYYY.MM.DD") into a dates.xsd date. Partial dates, impossible dates and
// years outside 1000..9999 (dates.xsd "year") are rejected.
func ParseDA(da string) (Date, bool) {
	da = strings.TrimSpace(strings.Trim(da, "\x00"))
	d, err := dcmtime.ParseDate(da)
	if err != nil || d.Precision != dcmtime.PrecisionFull && d.Precision > dcmtime.PrecisionDay {
		return Date{}, false
	}
	y, m, day := d.Time.Date()
	// time.Date normalises 20230231 to March 3rd; refuse what it changed.
	if strings.ReplaceAll(da, ".", "") != fmt.Sprintf("%04d%02d%02d", y, int(m), day) {
		return Date{}, false
	}
	if y < 1000 || y > 9999 {
		return Date{}, false
	}
	return Date{Y: y, M: int(m), D: day}, true
}

// ParseTM parses a DICOM TM value ("HH", "HHMM", "HHMMSS" or
// "HHMMSS.FFFFFF", and the ACR-NEMA form "HH:MM:SS.frac") into a dates.xsd
// time. Only the precision present in the value is written: seconds and
// milliseconds are omitted when absent. A leap second (60) is written as 59,
// since dates.xsd "second" ends at 59. Hours-only values get minute 0,
// because dates.xsd requires minutes.
func ParseTM(tm string) (Time, bool) {
	tm = strings.TrimSpace(strings.Trim(tm, "\x00"))
	if strings.Count(tm, ":") > 0 && len(tm) >= 5 && len(tm) <= 15 {
		tm = strings.Replace(tm, ":", "", 2)
	}
	leap := false
	if len(tm) >= 6 && tm[4:6] == "60" {
		tm, leap = tm[:4]+"59"+tm[6:], true
	}
	if len(tm) < 2 || tm[0] < '0' || tm[0] > '9' || tm[1] < '0' || tm[1] > '9' {
		return Time{}, false
	}
	t, err := dcmtime.ParseTime(tm)
	if err != nil || t.Precision > dcmtime.PrecisionHours || !tmInRange(tm) {
		return Time{}, false
	}
	out := Time{H: t.Time.Hour(), M: t.Time.Minute()}
	if t.Precision <= dcmtime.PrecisionSeconds {
		s := t.Time.Second()
		out.S = &s
	}
	if t.Precision < dcmtime.PrecisionSeconds || leap {
		f := t.Time.Nanosecond() / int(time.Millisecond)
		if leap {
			f = 999
		}
		out.F = &f
	}
	return out, true
}

// tmInRange checks hours, minutes and seconds of a TM matched by dcmtime,
// which normalises 2500 to 01:00 instead of refusing it.
func tmInRange(tm string) bool {
	limits := []int{23, 59, 59}
	for i, lim := range limits {
		if len(tm) < 2*i+2 || tm[2*i] == '.' {
			break
		}
		if n := int(tm[2*i]-'0')*10 + int(tm[2*i+1]-'0'); n > lim {
			return false
		}
	}
	return true
}

// ParseTimezone parses Timezone Offset From UTC (0008,0201), "+HHMM" or
// "-HHMM", into minutes east of UTC. Offsets outside -12:00..+14:00 are
// rejected (PS3.3 C.12.1.1.8).
func ParseTimezone(s string) (minutes int, ok bool) {
	s = strings.TrimSpace(strings.Trim(s, "\x00"))
	if len(s) != 5 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	h := int(s[1]-'0')*10 + int(s[2]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 {
		return 0, false
	}
	minutes = h*60 + m
	if s[0] == '-' {
		minutes = -minutes
	}
	if minutes < -12*60 || minutes > 14*60 {
		return 0, false
	}
	return minutes, true
}

// TimezoneValue renders an offset from UTC as the codable value written in
// dates.xsd "tz": text "UTC", "UTC+01:00" or "UTC-05:30". No code is written:
// HealthVault's time-zone vocabulary has no entries for bare offsets.
func TimezoneValue(minutes int) *CodableValue {
	if minutes == 0 {
		return &CodableValue{Text: "UTC"}
	}
	sign := '+'
	if minutes < 0 {
		sign, minutes = '-', -minutes
	}
	return &CodableValue{Text: fmt.Sprintf("UTC%c%02d:%02d", sign, minutes/60, minutes%60)}
}

// MakeDateTime combines a DA, an optional TM and an optional Timezone Offset
// From UTC into a dates.xsd date-time. It fails only when the date is
// unusable; an unusable time or offset is left out.
func MakeDateTime(da, tm, tz string) (DateTime, bool) {
	d, ok := ParseDA(da)
	if !ok {
		return DateTime{}, false
	}
	dt := DateTime{Date: d}
	if t, ok := ParseTM(tm); ok {
		dt.Time = &t
		// An offset without a time of day says nothing a reader can use.
		if off, ok := ParseTimezone(tz); ok {
			dt.TZ = TimezoneValue(off)
		}
	}
	return dt, true
}

// ParseDT parses a DICOM DT value ("YYYYMMDDHHMMSS.FFFFFF&ZZXX"). Its own
// offset wins over tz (the Timezone Offset From UTC of the data set). DT
// values less precise than a day are rejected.
func ParseDT(dt, tz string) (DateTime, bool) {
	dt = strings.TrimSpace(strings.Trim(dt, "\x00"))
	if len(dt) < 8 {
		return DateTime{}, false
	}
	// The date part is checked as a DA so impossible dates are refused.
	d, ok := ParseDA(dt[:8])
	if !ok {
		return DateTime{}, false
	}
	rest := dt[8:]
	off := ""
	if i := strings.IndexAny(rest, "+-"); i >= 0 {
		rest, off = rest[:i], rest[i:]
	}
	out := DateTime{Date: d}
	if rest != "" {
		t, ok := ParseTM(rest)
		if !ok {
			return DateTime{}, false
		}
		out.Time = &t
	}
	if off == "" {
		off = tz
	}
	if m, ok := ParseTimezone(off); ok && out.Time != nil {
		out.TZ = TimezoneValue(m)
	}
	return out, true
}

// dtKey orders date-times for "earliest" choices; offsets are ignored since
// one series shares one offset.
func dtKey(d DateTime) string {
	k := fmt.Sprintf("%04d%02d%02d", d.Date.Y, d.Date.M, d.Date.D)
	if d.Time != nil {
		k += fmt.Sprintf("%02d%02d", d.Time.H, d.Time.M)
		if d.Time.S != nil {
			k += fmt.Sprintf("%02d", *d.Time.S)
		}
		if d.Time.F != nil {
			k += fmt.Sprintf("%03d", *d.Time.F)
		}
	}
	return k
}
