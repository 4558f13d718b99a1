package mis

import (
	"strings"
	"unicode"
)

// maxText bounds every text the package writes into an MIS: DICOM's longest
// value representation used here (LO) holds 64 characters, so anything far
// beyond is hostile or broken.
const maxText = 1024

// cleanText makes a decoded DICOM value fit for an XML text node and for the
// schema type stringnznw: control characters become spaces, runs of space
// collapse, padding is trimmed and the length is bounded. It returns "" when
// nothing visible is left, so the optional element is omitted.
func cleanText(s string) string {
	var sb strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == 0xFFFE || r == 0xFFFF ||
			(r >= 0xD800 && r <= 0xDFFF) {
			space = sb.Len() > 0
			continue
		}
		if n >= maxText {
			break
		}
		if space {
			sb.WriteByte(' ')
			n++
			space = false
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}

// firstValue returns the first of the backslash-separated values of a
// decoded multi-valued string.
func firstValue(s string) string {
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		return s[:i]
	}
	return s
}
