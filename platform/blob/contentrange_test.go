package blob

import (
	"bufio"
	"errors"
	"os"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in   string
		want ContentRange
		ok   bool
	}{
		{"bytes 0-255/600", ContentRange{0, 255, 600}, true},
		{"bytes 512-599/600", ContentRange{512, 599, 600}, true},
		{"bytes 0-4194303/*", ContentRange{0, 4194303, -1}, true},
		{"bytes 7-7/8", ContentRange{7, 7, 8}, true},
		{"bytes 512-600/600", ContentRange{}, false}, // last byte must be below the total
		{"bytes 10-5/20", ContentRange{}, false},
		{"bytes */600", ContentRange{}, false},
		{"bytes=0-99", ContentRange{}, false},
		{"bytes 0-99", ContentRange{}, false},
		{"bytes -1-5/10", ContentRange{}, false},
		{"bytes +1-5/10", ContentRange{}, false},
		{"bytes 0-99/100x", ContentRange{}, false},
		{"bytes 0-9/", ContentRange{}, false},
		{"Bytes 0-9/10", ContentRange{}, false},
		{"bytes 99999999999999999999-1/*", ContentRange{}, false},
		{"", ContentRange{}, false},
	}
	for _, tc := range tests {
		got, err := ParseContentRange(tc.in)
		if tc.ok != (err == nil) || (tc.ok && got != tc.want) {
			t.Errorf("%q: %+v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrContentRange) {
			t.Errorf("%q: error %v does not wrap ErrContentRange", tc.in, err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%q: String() = %q", tc.in, got.String())
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	fh, err := os.Open("testdata/content-ranges.txt")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	fh.Close()
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseContentRange(s)
		if err != nil {
			return
		}
		if c.First < 0 || c.Last < c.First || (c.Total >= 0 && c.Last >= c.Total) || c.Len() <= 0 {
			t.Fatalf("%q parsed to invalid %+v", s, c)
		}
		again, err := ParseContentRange(c.String())
		if err != nil || again != c {
			t.Fatalf("%q: round trip %+v -> %q -> %+v, %v", s, c, c.String(), again, err)
		}
	})
}
