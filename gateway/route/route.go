// Package route decides where a received study goes: into the patient's
// HealthVault record (after Patient Connect), into an emailed drop-off/pick-up
// package, or on hold for radiology staff.
//
// Rules are ordered; the first rule whose every condition matches decides.
// A condition left empty matches anything. When no rule matches, the
// configured default action applies, which is hold unless set otherwise:
// a study nobody has decided about should wait for a person, not leave the
// hospital.
package route

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Action is where a matched study is sent.
type Action string

// The actions a rule can take.
const (
	// ActionRecord delivers into the record that Patient Connect mapped to
	// the study's external patient id; the study waits until a mapping exists.
	ActionRecord Action = "record"
	// ActionDOPU seals the study into a drop-off/pick-up package for a
	// registered pick-up.
	ActionDOPU Action = "dopu"
	// ActionHold keeps the study until staff decide.
	ActionHold Action = "hold"
)

// ErrInvalidRule reports a rule that cannot be compiled.
var ErrInvalidRule = errors.New("route: invalid rule")

// Valid reports whether a is one of the defined actions.
func (a Action) Valid() bool {
	switch a {
	case ActionRecord, ActionDOPU, ActionHold:
		return true
	}
	return false
}

// Rule is one routing rule as staff configure it. String fields compare
// case-insensitively after trimming DICOM's space padding, except
// StudyDescription, which is a regular expression (RE2 syntax, unanchored;
// anchor it with ^…$ to match the whole description).
type Rule struct {
	Name             string `json:"name"`
	CallingAE        string `json:"calling_ae,omitempty"`
	PatientID        string `json:"patient_id,omitempty"`
	IssuerOfPatient  string `json:"issuer_of_patient_id,omitempty"`
	Modality         string `json:"modality,omitempty"`
	StudyDescription string `json:"study_description,omitempty"`
	ReferringDoctor  string `json:"referring_physician,omitempty"`
	Action           Action `json:"action"`
}

// Study is what routing looks at: the facts of a study as received.
// Modalities lists every modality in the study (a study matches a modality
// condition when any of its series has that modality).
type Study struct {
	CallingAE        string
	PatientID        string
	IssuerOfPatient  string
	Modalities       []string
	StudyDescription string
	ReferringDoctor  string
}

// Table is a compiled, ordered set of rules. The zero value holds studies.
type Table struct {
	rules    []compiled
	fallback Action
}

type compiled struct {
	Rule
	desc *regexp.Regexp
}

// Compile checks rules and returns a Table that applies them in order,
// falling back to def when none matches (hold when def is empty).
func Compile(rules []Rule, def Action) (*Table, error) {
	if def == "" {
		def = ActionHold
	}
	if !def.Valid() {
		return nil, fmt.Errorf("%w: default action %q", ErrInvalidRule, def)
	}
	t := &Table{fallback: def}
	for i, r := range rules {
		if !r.Action.Valid() {
			return nil, fmt.Errorf("%w: rule %d (%s): action %q is not record, dopu or hold", ErrInvalidRule, i+1, r.Name, r.Action)
		}
		c := compiled{Rule: r}
		if r.StudyDescription != "" {
			re, err := regexp.Compile(r.StudyDescription)
			if err != nil {
				return nil, fmt.Errorf("%w: rule %d (%s): study description: %v", ErrInvalidRule, i+1, r.Name, err)
			}
			c.desc = re
		}
		t.rules = append(t.rules, c)
	}
	return t, nil
}

// Decision is the outcome of routing one study: the action and the rule
// that chose it (empty Rule.Name and RuleIndex -1 for the default).
type Decision struct {
	Action    Action
	RuleIndex int
	RuleName  string
}

// String describes the decision for the admin UI and the delivery history.
func (d Decision) String() string {
	if d.RuleIndex < 0 {
		return fmt.Sprintf("%s (default: no rule matched)", d.Action)
	}
	return fmt.Sprintf("%s (rule %d %q)", d.Action, d.RuleIndex+1, d.RuleName)
}

// Route applies the table to s. A nil table holds every study.
func (t *Table) Route(s Study) Decision {
	if t == nil {
		return Decision{Action: ActionHold, RuleIndex: -1}
	}
	for i, r := range t.rules {
		if r.matches(s) {
			return Decision{Action: r.Action, RuleIndex: i, RuleName: r.Name}
		}
	}
	return Decision{Action: t.fallback, RuleIndex: -1}
}

func (r compiled) matches(s Study) bool {
	if !eq(r.CallingAE, s.CallingAE) || !eq(r.PatientID, s.PatientID) ||
		!eq(r.IssuerOfPatient, s.IssuerOfPatient) || !eq(r.ReferringDoctor, s.ReferringDoctor) {
		return false
	}
	if r.Modality != "" {
		found := false
		for _, m := range s.Modalities {
			if eq(r.Modality, m) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if r.desc != nil && !r.desc.MatchString(strings.TrimSpace(s.StudyDescription)) {
		return false
	}
	return true
}

// eq compares a condition with a value; an empty condition matches anything.
func eq(cond, v string) bool {
	cond = strings.TrimSpace(cond)
	return cond == "" || strings.EqualFold(cond, strings.TrimSpace(v))
}
