package mis

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// This file decodes DICOM text values to UTF-8 following PS3.5 §6.1 and
// PS3.3 C.12.1.1.2 (Specific Character Set): single-byte sets, ISO 2022 code
// extensions switched by escape sequences, and the three sets that allow no
// code extensions (UTF-8, GB18030, GBK).
//
// suyashkumar/dicom v1.1.0 decodes strings itself, but with one decoder for
// the whole value (the second term of (0008,0005)), which loses JIS X 0201
// katakana designated to G1 and leaves ISO 2022 escape sequences of Korean
// and Chinese in the text. Read therefore decodes the raw bytes here.

// gset is one graphic character set that can be designated to G0 or G1.
type gset int

const (
	gNone     gset = iota
	gASCII         // ISO-IR 6
	gJISRoman      // ISO-IR 14, G0 of ISO 2022 IR 13 (decoded as ASCII, as pydicom does)
	gJISKana       // ISO-IR 13, G1 half-width katakana
	gJIS0208       // ISO-IR 87, two bytes in G0
	gJIS0212       // ISO-IR 159, two bytes in G0
	gKSX1001       // ISO-IR 149, two bytes in G1
	gGB2312        // ISO-IR 58, two bytes in G1
	gLatin1        // ISO-IR 100 upper half, and the other ISO 8859 parts below
	gLatin2        // ISO-IR 101
	gLatin3        // ISO-IR 109
	gLatin4        // ISO-IR 110
	gCyrillic      // ISO-IR 144
	gArabic        // ISO-IR 127
	gGreek         // ISO-IR 126
	gHebrew        // ISO-IR 138
	gLatin5        // ISO-IR 148
	gThai          // ISO-IR 166
	gLatin9        // ISO-IR 203
)

// upperHalf maps the single-byte G1 sets to their x/text code pages.
var upperHalf = map[gset]*charmap.Charmap{
	gLatin1:   charmap.ISO8859_1,
	gLatin2:   charmap.ISO8859_2,
	gLatin3:   charmap.ISO8859_3,
	gLatin4:   charmap.ISO8859_4,
	gCyrillic: charmap.ISO8859_5,
	gArabic:   charmap.ISO8859_6,
	gGreek:    charmap.ISO8859_7,
	gHebrew:   charmap.ISO8859_8,
	gLatin5:   charmap.ISO8859_9,
	gThai:     charmap.Windows874, // TIS 620-2533 plus a few punctuation marks
	gLatin9:   charmap.ISO8859_15,
}

// term is one Defined Term of Specific Character Set: what G0 and G1 hold
// when a value starts, or a whole-value decoder for the sets without code
// extensions.
type term struct {
	g0, g1 gset
	whole  encoding.Encoding // UTF-8, GB18030, GBK; nil for ISO 2022 sets
}

var terms = map[string]term{
	"":                {g0: gASCII},
	"ISO_IR 6":        {g0: gASCII},
	"ISO 2022 IR 6":   {g0: gASCII},
	"ISO_IR 100":      {g0: gASCII, g1: gLatin1},
	"ISO 2022 IR 100": {g0: gASCII, g1: gLatin1},
	"ISO_IR 101":      {g0: gASCII, g1: gLatin2},
	"ISO 2022 IR 101": {g0: gASCII, g1: gLatin2},
	"ISO_IR 109":      {g0: gASCII, g1: gLatin3},
	"ISO 2022 IR 109": {g0: gASCII, g1: gLatin3},
	"ISO_IR 110":      {g0: gASCII, g1: gLatin4},
	"ISO 2022 IR 110": {g0: gASCII, g1: gLatin4},
	"ISO_IR 144":      {g0: gASCII, g1: gCyrillic},
	"ISO 2022 IR 144": {g0: gASCII, g1: gCyrillic},
	"ISO_IR 127":      {g0: gASCII, g1: gArabic},
	"ISO 2022 IR 127": {g0: gASCII, g1: gArabic},
	"ISO_IR 126":      {g0: gASCII, g1: gGreek},
	"ISO 2022 IR 126": {g0: gASCII, g1: gGreek},
	"ISO_IR 138":      {g0: gASCII, g1: gHebrew},
	"ISO 2022 IR 138": {g0: gASCII, g1: gHebrew},
	"ISO_IR 148":      {g0: gASCII, g1: gLatin5},
	"ISO 2022 IR 148": {g0: gASCII, g1: gLatin5},
	"ISO_IR 166":      {g0: gASCII, g1: gThai},
	"ISO 2022 IR 166": {g0: gASCII, g1: gThai},
	"ISO_IR 203":      {g0: gASCII, g1: gLatin9},
	"ISO 2022 IR 203": {g0: gASCII, g1: gLatin9},
	"ISO_IR 13":       {g0: gJISRoman, g1: gJISKana},
	"ISO 2022 IR 13":  {g0: gJISRoman, g1: gJISKana},
	"ISO 2022 IR 87":  {g0: gJIS0208},
	"ISO 2022 IR 159": {g0: gJIS0212},
	"ISO 2022 IR 149": {g0: gASCII, g1: gKSX1001},
	"ISO 2022 IR 58":  {g0: gASCII, g1: gGB2312},
	"ISO_IR 192":      {whole: encoding.Nop},
	"GB18030":         {whole: simplifiedchinese.GB18030},
	"GBK":             {whole: simplifiedchinese.GBK},
}

// escapes maps ISO 2022 escape sequences (without the leading ESC) to the set
// they designate and whether it goes to G1 (PS3.3 Table C.12-3 and C.12-4).
var escapes = map[string]struct {
	set gset
	g1  bool
}{
	"(B":  {gASCII, false},
	"(J":  {gJISRoman, false},
	")I":  {gJISKana, true},
	"$B":  {gJIS0208, false},
	"$@":  {gJIS0208, false}, // JIS C 6226-1978, decoded as JIS X 0208
	"$(D": {gJIS0212, false},
	"$)C": {gKSX1001, true},
	"$)A": {gGB2312, true},
	"-A":  {gLatin1, true},
	"-B":  {gLatin2, true},
	"-C":  {gLatin3, true},
	"-D":  {gLatin4, true},
	"-L":  {gCyrillic, true},
	"-G":  {gArabic, true},
	"-F":  {gGreek, true},
	"-H":  {gHebrew, true},
	"-M":  {gLatin5, true},
	"-T":  {gThai, true},
	"-b":  {gLatin9, true},
}

// Charset decodes text values of one data set with its Specific Character
// Set (0008,0005). The zero value decodes the default repertoire.
type Charset struct {
	first term
	terms []string
}

// NewCharset returns the decoder for the values of Specific Character Set.
// Unknown terms are ignored (their bytes then decode as the default
// repertoire or U+FFFD), because a header with a misspelt term still has to
// become a study.
func NewCharset(specificCharacterSet []string) Charset {
	cs := Charset{first: terms[""]}
	for i, name := range specificCharacterSet {
		name = strings.TrimSpace(name)
		if i >= 8 {
			break // bound hostile multiplicity; no real header lists more
		}
		cs.terms = append(cs.terms, name)
		if i == 0 {
			if t, ok := terms[name]; ok {
				cs.first = t
			}
		}
	}
	return cs
}

// Terms returns the Specific Character Set terms the decoder was made with.
func (c Charset) Terms() []string { return append([]string(nil), c.terms...) }

// Decode converts one raw text value (all of its values, with the backslash
// delimiters) to UTF-8. pn selects Person Name rules, where '^' and '='
// also end an escape sequence's scope. Bytes that do not decode become U+FFFD.
func (c Charset) Decode(raw []byte, pn bool) string {
	if c.first.whole != nil {
		if c.first.whole == encoding.Nop {
			return strings.ToValidUTF8(string(raw), "\uFFFD")
		}
		out, err := c.first.whole.NewDecoder().Bytes(raw)
		if err != nil {
			return strings.ToValidUTF8(string(raw), "\uFFFD")
		}
		return string(out)
	}
	var sb strings.Builder
	sb.Grow(len(raw))
	g0, g1 := c.first.g0, c.first.g1
	for i := 0; i < len(raw); {
		b := raw[i]
		switch {
		case b == 0x1b:
			n, set, toG1, ok := escapeAt(raw[i:])
			i += n
			if ok {
				if toG1 {
					g1 = set
				} else {
					g0 = set
				}
			}
			continue
		case b < 0x20 || b == '\\' && !twoByte(g0) || pn && (b == '^' || b == '=') && !twoByte(g0):
			// Control characters and delimiters return to the initial sets
			// (PS3.5 §6.1.2.5.3).
			g0, g1 = c.first.g0, c.first.g1
			sb.WriteByte(b)
			i++
			continue
		case b < 0x80:
			if twoByte(g0) {
				i += decodePair(&sb, g0, raw[i:])
				continue
			}
			sb.WriteByte(b)
			i++
		default:
			i += decodeHigh(&sb, g1, raw[i:])
		}
	}
	return sb.String()
}

func twoByte(g gset) bool { return g == gJIS0208 || g == gJIS0212 }

// escapeAt parses the escape sequence at the start of s (s[0] == ESC) and
// returns its length.
func escapeAt(s []byte) (n int, set gset, g1, ok bool) {
	n = 1
	for n < len(s) && n < 5 && s[n] >= 0x20 && s[n] <= 0x2f {
		n++
	}
	if n < len(s) && s[n] >= 0x30 && s[n] <= 0x7e {
		n++
		e, found := escapes[string(s[1:n])]
		return n, e.set, e.g1, found
	}
	return n, gNone, false, false
}

// decodePair decodes a two-byte G0 character (JIS X 0208 or 0212) and
// returns the bytes consumed.
func decodePair(sb *strings.Builder, g gset, s []byte) int {
	if len(s) < 2 || s[0] < 0x21 || s[0] > 0x7e || s[1] < 0x21 || s[1] > 0x7e {
		if s[0] == ' ' {
			sb.WriteByte(' ')
		} else {
			sb.WriteRune(utf8.RuneError)
		}
		return 1
	}
	euc := []byte{s[0] | 0x80, s[1] | 0x80}
	if g == gJIS0212 {
		euc = append([]byte{0x8f}, euc...)
	}
	writeDecoded(sb, japanese.EUCJP, euc)
	return 2
}

// decodeHigh decodes a character whose first byte is in GR (0x80-0xFF) with
// the set designated to G1 and returns the bytes consumed.
func decodeHigh(sb *strings.Builder, g gset, s []byte) int {
	switch g {
	case gJISKana:
		if s[0] >= 0xa1 && s[0] <= 0xdf {
			sb.WriteRune(rune(0xff61 + int(s[0]-0xa1)))
		} else {
			sb.WriteRune(utf8.RuneError)
		}
		return 1
	case gKSX1001, gGB2312:
		if len(s) < 2 || s[0] < 0xa1 || s[0] > 0xfe || s[1] < 0xa1 || s[1] > 0xfe {
			sb.WriteRune(utf8.RuneError)
			return 1
		}
		var enc encoding.Encoding = korean.EUCKR
		if g == gGB2312 {
			enc = simplifiedchinese.GBK
		}
		writeDecoded(sb, enc, s[:2])
		return 2
	}
	if cm, ok := upperHalf[g]; ok {
		sb.WriteRune(cm.DecodeByte(s[0]))
		return 1
	}
	sb.WriteRune(utf8.RuneError)
	return 1
}

func writeDecoded(sb *strings.Builder, enc encoding.Encoding, b []byte) {
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil || len(out) == 0 {
		sb.WriteRune(utf8.RuneError)
		return
	}
	sb.Write(out)
}

// cleanDecoded repairs a value that suyashkumar/dicom decoded itself (used
// when raw bytes are not available, as in FromDataset): ISO 2022 escape
// sequences that its EUC decoders pass through are removed.
func cleanDecoded(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			n, _, _, _ := escapeAt([]byte(s[i:min(len(s), i+6)]))
			i += n
			continue
		}
		sb.WriteByte(s[i])
		i++
	}
	return sb.String()
}
