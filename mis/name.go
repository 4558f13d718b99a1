package mis

import "strings"

// PersonName is a DICOM PN value split into its component groups
// (PS3.5 §6.2.1): alphabetic, ideographic and phonetic, each with family,
// given, middle, prefix and suffix components.
type PersonName struct {
	Alphabetic, Ideographic, Phonetic NameGroup
}

// NameGroup is one component group of a DICOM person name.
type NameGroup struct {
	Family, Given, Middle, Prefix, Suffix string
}

// ParsePersonName splits a decoded PN value. It is lenient: extra groups
// are dropped and extra components are appended to the suffix, so hostile
// values still yield a name.
func ParsePersonName(pn string) PersonName {
	groups := strings.SplitN(firstValue(pn), "=", 4)
	var out PersonName
	for i, g := range groups {
		if i > 2 {
			break
		}
		ng := parseGroup(g)
		switch i {
		case 0:
			out.Alphabetic = ng
		case 1:
			out.Ideographic = ng
		case 2:
			out.Phonetic = ng
		}
	}
	return out
}

func parseGroup(g string) NameGroup {
	c := strings.Split(g, "^")
	get := func(i int) string {
		if i < len(c) {
			return cleanText(c[i])
		}
		return ""
	}
	ng := NameGroup{Family: get(0), Given: get(1), Middle: get(2), Prefix: get(3), Suffix: get(4)}
	if len(c) > 5 {
		ng.Suffix = cleanText(strings.Join(c[4:], " "))
	}
	return ng
}

// IsEmpty reports whether the group has no component.
func (g NameGroup) IsEmpty() bool {
	return g.Family == "" && g.Given == "" && g.Middle == "" && g.Prefix == "" && g.Suffix == ""
}

// western renders prefix, given, middle, family, suffix.
func (g NameGroup) western() string {
	return joinNonEmpty(" ", g.Prefix, g.Given, g.Middle, g.Family, g.Suffix)
}

// familyFirst renders the order used for ideographic and phonetic groups
// (Japanese, Korean, Chinese names): family, given, middle.
func (g NameGroup) familyFirst() string {
	return joinNonEmpty(" ", g.Prefix, g.Family, g.Given, g.Middle, g.Suffix)
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}

// IsEmpty reports whether the name has no component in any group.
func (p PersonName) IsEmpty() bool {
	return p.Alphabetic.IsEmpty() && p.Ideographic.IsEmpty() && p.Phonetic.IsEmpty()
}

// Full renders the name for display: the alphabetic group in western order
// ("Prefix Given Middle Family Suffix"), followed by the ideographic and
// phonetic groups, family name first, in parentheses. When the alphabetic
// group is empty the first non-empty other group leads.
func (p PersonName) Full() string {
	var lead string
	var rest []string
	if !p.Alphabetic.IsEmpty() {
		lead = p.Alphabetic.western()
	}
	for _, g := range []NameGroup{p.Ideographic, p.Phonetic} {
		if g.IsEmpty() {
			continue
		}
		if lead == "" {
			lead = g.familyFirst()
			continue
		}
		if s := g.familyFirst(); s != lead {
			rest = append(rest, s)
		}
	}
	if len(rest) == 0 {
		return lead
	}
	return lead + " (" + strings.Join(rest, ", ") + ")"
}

// HealthVaultName converts the name to base.xsd "name": full name plus the
// structured parts of the first non-empty group. It returns nil for an empty
// name. Prefix and suffix become title and suffix as free text (the
// name-prefixes and name-suffixes vocabularies are not coded here).
func (p PersonName) HealthVaultName() *Name {
	full := p.Full()
	if full == "" {
		return nil
	}
	g := p.Alphabetic
	if g.IsEmpty() {
		g = p.Ideographic
	}
	if g.IsEmpty() {
		g = p.Phonetic
	}
	n := &Name{Full: full, First: g.Given, Middle: g.Middle, Last: g.Family}
	if g.Prefix != "" {
		n.Title = &CodableValue{Text: g.Prefix}
	}
	if g.Suffix != "" {
		n.Suffix = &CodableValue{Text: g.Suffix}
	}
	return n
}
