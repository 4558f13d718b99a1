package blob

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrContentRange is wrapped by every ParseContentRange error.
var ErrContentRange = errors.New("blob: bad Content-Range")

// ContentRange is a parsed "bytes FIRST-LAST/TOTAL" header. Total is -1
// when the sender gave "*" (unknown length, as the .NET SDK always does).
type ContentRange struct {
	First, Last int64
	Total       int64
}

// Len is the number of bytes the range covers.
func (c ContentRange) Len() int64 { return c.Last - c.First + 1 }

// String formats the range as a Content-Range header value.
func (c ContentRange) String() string {
	total := "*"
	if c.Total >= 0 {
		total = strconv.FormatInt(c.Total, 10)
	}
	return fmt.Sprintf("bytes %d-%d/%s", c.First, c.Last, total)
}

// maxHeaderLen bounds the header: two 19-digit numbers and a total fit easily.
const maxHeaderLen = 100

// ParseContentRange parses the Content-Range of a chunk upload. It accepts
// exactly "bytes FIRST-LAST/TOTAL" or "bytes FIRST-LAST/*" with decimal
// non-negative numbers, FIRST <= LAST and, when TOTAL is known, LAST < TOTAL.
func ParseContentRange(s string) (ContentRange, error) {
	if len(s) > maxHeaderLen {
		return ContentRange{}, fmt.Errorf("%w: header longer than %d bytes", ErrContentRange, maxHeaderLen)
	}
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return ContentRange{}, fmt.Errorf("%w: %q does not start with \"bytes \"", ErrContentRange, s)
	}
	rng, total, ok := strings.Cut(rest, "/")
	if !ok {
		return ContentRange{}, fmt.Errorf("%w: %q has no /TOTAL", ErrContentRange, s)
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return ContentRange{}, fmt.Errorf("%w: %q has no FIRST-LAST", ErrContentRange, s)
	}
	var c ContentRange
	var err error
	if c.First, err = parseNum(first); err != nil {
		return ContentRange{}, fmt.Errorf("%w: first byte: %v", ErrContentRange, err)
	}
	if c.Last, err = parseNum(last); err != nil {
		return ContentRange{}, fmt.Errorf("%w: last byte: %v", ErrContentRange, err)
	}
	if c.First > c.Last {
		return ContentRange{}, fmt.Errorf("%w: first byte %d after last byte %d", ErrContentRange, c.First, c.Last)
	}
	if total == "*" {
		c.Total = -1
		return c, nil
	}
	if c.Total, err = parseNum(total); err != nil {
		return ContentRange{}, fmt.Errorf("%w: total: %v", ErrContentRange, err)
	}
	if c.Last >= c.Total {
		return ContentRange{}, fmt.Errorf("%w: last byte %d not below total %d", ErrContentRange, c.Last, c.Total)
	}
	return c, nil
}

// parseNum accepts 1 to 18 decimal digits, so the value always fits an int64.
func parseNum(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, fmt.Errorf("%q is not a number of 1 to 18 digits", s)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
