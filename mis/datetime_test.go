package mis

import (
	"encoding/xml"
	"testing"
)

func ip(i int) *int { return &i }

func TestParseDA(t *testing.T) {
	cases := []struct {
		in   string
		want Date
		ok   bool
	}{
		{"20240229", Date{2024, 2, 29}, true},
		{"19600614", Date{1960, 6, 14}, true},
		{"1997.04.24", Date{1997, 4, 24}, true}, // ACR-NEMA form (pydicom ExplVR_BigEnd.dcm)
		{" 20240101 ", Date{2024, 1, 1}, true},
		{"20240101\x00", Date{2024, 1, 1}, true},
		{"20230229", Date{}, false}, // not a leap year
		{"20241301", Date{}, false},
		{"20240100", Date{}, false},
		{"2024", Date{}, false}, // partial dates are query syntax, not values
		{"202401", Date{}, false},
		{"09991231", Date{}, false}, // dates.xsd years start at 1000
		{"", Date{}, false},
		{"2024-01-01", Date{}, false},
		{"abcdefgh", Date{}, false},
	}
	for _, c := range cases {
		got, ok := ParseDA(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseDA(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParseTM(t *testing.T) {
	cases := []struct {
		in   string
		want Time
		ok   bool
	}{
		{"08", Time{H: 8}, true},
		{"0815", Time{H: 8, M: 15}, true},
		{"081530", Time{H: 8, M: 15, S: ip(30)}, true},
		{"081530.250", Time{H: 8, M: 15, S: ip(30), F: ip(250)}, true},
		{"081530.2", Time{H: 8, M: 15, S: ip(30), F: ip(200)}, true},
		{"145225.546000", Time{H: 14, M: 52, S: ip(25), F: ip(546)}, true},
		{"235959.999999", Time{H: 23, M: 59, S: ip(59), F: ip(999)}, true},
		{"235960", Time{H: 23, M: 59, S: ip(59), F: ip(999)}, true}, // leap second
		{"14:04:38", Time{H: 14, M: 4, S: ip(38)}, true},            // ACR-NEMA form
		{"093431.70 ", Time{H: 9, M: 34, S: ip(31), F: ip(700)}, true},
		{"2500", Time{}, false},
		{"0860", Time{}, false},
		{"", Time{}, false},
		{".5", Time{}, false},
		{"ab", Time{}, false},
	}
	for _, c := range cases {
		got, ok := ParseTM(c.in)
		if ok != c.ok || !sameTime(got, c.want) {
			t.Errorf("ParseTM(%q) = %s, %v; want %s, %v", c.in, fmtTime(got), ok, fmtTime(c.want), c.ok)
		}
	}
}

func sameTime(a, b Time) bool {
	eq := func(x, y *int) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return a.H == b.H && a.M == b.M && eq(a.S, b.S) && eq(a.F, b.F)
}

func fmtTime(t Time) string {
	b, _ := xml.Marshal(t)
	return string(b)
}

func TestParseTimezone(t *testing.T) {
	cases := []struct {
		in   string
		want int
		ok   bool
		text string
	}{
		{"+0100", 60, true, "UTC+01:00"},
		{"-0500", -300, true, "UTC-05:00"},
		{"+0530", 330, true, "UTC+05:30"},
		{"+0000", 0, true, "UTC"},
		{"-0000", 0, true, "UTC"},
		{"+1400", 840, true, "UTC+14:00"},
		{"-1200", -720, true, "UTC-12:00"},
		{"+1401", 0, false, ""},
		{"-1300", 0, false, ""},
		{"+0160", 0, false, ""},
		{"0100", 0, false, ""},
		{"+01:00", 0, false, ""},
		{"", 0, false, ""},
	}
	for _, c := range cases {
		got, ok := ParseTimezone(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseTimezone(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
		if ok && TimezoneValue(got).Text != c.text {
			t.Errorf("TimezoneValue(%d) = %q, want %q", got, TimezoneValue(got).Text, c.text)
		}
	}
}

func TestMakeDateTimeAndDT(t *testing.T) {
	cases := []struct {
		name string
		got  func() (DateTime, bool)
		want string // xml of DateTime, "" when not ok
	}{
		{"date time tz", func() (DateTime, bool) { return MakeDateTime("20240229", "081530", "+0100") },
			`<DateTime><date><y>2024</y><m>2</m><d>29</d></date><time><h>8</h><m>15</m><s>30</s></time><tz><text>UTC+01:00</text></tz></DateTime>`},
		{"date only ignores tz", func() (DateTime, bool) { return MakeDateTime("20240229", "", "+0100") },
			`<DateTime><date><y>2024</y><m>2</m><d>29</d></date></DateTime>`},
		{"bad time kept out", func() (DateTime, bool) { return MakeDateTime("20240229", "99", "") },
			`<DateTime><date><y>2024</y><m>2</m><d>29</d></date></DateTime>`},
		{"bad tz kept out", func() (DateTime, bool) { return MakeDateTime("20240229", "1200", "+9999") },
			`<DateTime><date><y>2024</y><m>2</m><d>29</d></date><time><h>12</h><m>0</m></time></DateTime>`},
		{"bad date", func() (DateTime, bool) { return MakeDateTime("2024", "1200", "") }, ""},
		{"DT own offset wins", func() (DateTime, bool) { return ParseDT("20240229081530.5-0300", "+0100") },
			`<DateTime><date><y>2024</y><m>2</m><d>29</d></date><time><h>8</h><m>15</m><s>30</s><f>500</f></time><tz><text>UTC-03:00</text></tz></DateTime>`},
		{"DT data set offset", func() (DateTime, bool) { return ParseDT("202402290815", "+0100") },
			`<DateTime><date><y>2024</y><m>2</m><d>29</d></date><time><h>8</h><m>15</m></time><tz><text>UTC+01:00</text></tz></DateTime>`},
		{"DT day only", func() (DateTime, bool) { return ParseDT("20240229", "") },
			`<DateTime><date><y>2024</y><m>2</m><d>29</d></date></DateTime>`},
		{"DT month only", func() (DateTime, bool) { return ParseDT("202402", "") }, ""},
		{"DT bad time", func() (DateTime, bool) { return ParseDT("2024022925", "") }, ""},
	}
	for _, c := range cases {
		dt, ok := c.got()
		if !ok {
			if c.want != "" {
				t.Errorf("%s: not ok, want %s", c.name, c.want)
			}
			continue
		}
		b, err := xml.Marshal(dt)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, b, c.want)
		}
	}
}
