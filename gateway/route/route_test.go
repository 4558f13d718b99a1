package route

import (
	"errors"
	"testing"
)

func TestRoute(t *testing.T) {
	rules := []Rule{
		{Name: "research", CallingAE: "RESEARCH_CT", Action: ActionHold},
		{Name: "mammo", Modality: "MG", Action: ActionHold},
		{Name: "clinic A", IssuerOfPatient: "CLINIC_A", Action: ActionRecord},
		{Name: "follow-ups", StudyDescription: `(?i)^follow[- ]?up`, Action: ActionDOPU},
		{Name: "dr who", ReferringDoctor: "Who^Doctor", PatientID: "P7", Action: ActionRecord},
	}
	tab, err := Compile(rules, ActionDOPU)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   Study
		want Action
		rule int
	}{
		{"calling AE first", Study{CallingAE: "research_ct ", Modalities: []string{"MG"}}, ActionHold, 0},
		{"any series modality", Study{CallingAE: "CT1", Modalities: []string{"CT", "MG"}}, ActionHold, 1},
		{"issuer", Study{IssuerOfPatient: "CLINIC_A", Modalities: []string{"CT"}}, ActionRecord, 2},
		{"description regexp", Study{StudyDescription: "Follow-up chest", Modalities: []string{"CT"}}, ActionDOPU, 3},
		{"description anchored", Study{StudyDescription: "chest follow-up", Modalities: []string{"CT"}}, ActionDOPU, -1},
		{"all conditions of a rule", Study{ReferringDoctor: "WHO^DOCTOR", PatientID: "P8"}, ActionDOPU, -1},
		{"all conditions met", Study{ReferringDoctor: "WHO^DOCTOR", PatientID: "P7"}, ActionRecord, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tab.Route(tt.in)
			if d.Action != tt.want || d.RuleIndex != tt.rule {
				t.Fatalf("Route = %v (rule %d), want %s (rule %d)", d, d.RuleIndex, tt.want, tt.rule)
			}
		})
	}
}

func TestNilAndDefault(t *testing.T) {
	var tab *Table
	if d := tab.Route(Study{}); d.Action != ActionHold {
		t.Fatalf("nil table: %v", d)
	}
	tab, err := Compile(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := tab.Route(Study{PatientID: "x"}); d.Action != ActionHold || d.RuleIndex != -1 {
		t.Fatalf("empty table: %v", d)
	}
}

func TestCompileRefuses(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		def   Action
	}{
		{"bad action", []Rule{{Action: "mail"}}, ""},
		{"missing action", []Rule{{Modality: "CT"}}, ""},
		{"bad regexp", []Rule{{StudyDescription: "(", Action: ActionHold}}, ""},
		{"bad default", nil, "drop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.rules, tt.def); !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("err = %v, want ErrInvalidRule", err)
			}
		})
	}
}
