package mis

import (
	"encoding/xml"
	"testing"
)

func TestPersonName(t *testing.T) {
	cases := []struct {
		pn   string
		full string
		xml  string // HealthVaultName as XML, "" for nil
	}{
		{"Doe^John", "John Doe", `<Name><full>John Doe</full><first>John</first><last>Doe</last></Name>`},
		{"Doe^John^Quincy^Dr.^Jr.", "Dr. John Quincy Doe Jr.",
			`<Name><full>Dr. John Quincy Doe Jr.</full><title><text>Dr.</text></title><first>John</first><middle>Quincy</middle><last>Doe</last><suffix><text>Jr.</text></suffix></Name>`},
		{"Last^First^mid^pre", "pre First mid Last",
			`<Name><full>pre First mid Last</full><title><text>pre</text></title><first>First</first><middle>mid</middle><last>Last</last></Name>`},
		{"Anonymized", "Anonymized", `<Name><full>Anonymized</full><last>Anonymized</last></Name>`},
		{"^^^^", "", ""},
		{"", "", ""},
		{"  Doe  ^  John  ", "John Doe", `<Name><full>John Doe</full><first>John</first><last>Doe</last></Name>`},
		{"Yamada^Tarou=山田^太郎=やまだ^たろう", "Tarou Yamada (山田 太郎, やまだ たろう)",
			`<Name><full>Tarou Yamada (山田 太郎, やまだ たろう)</full><first>Tarou</first><last>Yamada</last></Name>`},
		{"=山田^太郎=やまだ^たろう", "山田 太郎 (やまだ たろう)",
			`<Name><full>山田 太郎 (やまだ たろう)</full><first>太郎</first><last>山田</last></Name>`},
		{"Wang^XiaoDong=王^小東=", "XiaoDong Wang (王 小東)",
			`<Name><full>XiaoDong Wang (王 小東)</full><first>XiaoDong</first><last>Wang</last></Name>`},
		{"김희중", "김희중", `<Name><full>김희중</full><last>김희중</last></Name>`},
		// Hostile: too many groups and components; only the first value counts.
		{"A^B^C^D^E^F^G=H=I=J=K", "D B C A E F G (H, I)",
			`<Name><full>D B C A E F G (H, I)</full><title><text>D</text></title><first>B</first><middle>C</middle><last>A</last><suffix><text>E F G</text></suffix></Name>`},
		{"One^A\\Two^B", "A One", `<Name><full>A One</full><first>A</first><last>One</last></Name>`},
		{"Tab\tName^X\x01", "X Tab Name", `<Name><full>X Tab Name</full><first>X</first><last>Tab Name</last></Name>`},
	}
	for _, c := range cases {
		p := ParsePersonName(c.pn)
		if got := p.Full(); got != c.full {
			t.Errorf("Full(%q) = %q, want %q", c.pn, got, c.full)
		}
		n := p.HealthVaultName()
		got := ""
		if n != nil {
			b, err := xml.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			got = string(b)
		}
		if got != c.xml {
			t.Errorf("HealthVaultName(%q):\n got %s\nwant %s", c.pn, got, c.xml)
		}
	}
}

func TestModalityValue(t *testing.T) {
	for _, code := range []string{"CT", "MR", "US", "CR", "DX", "MG", "NM", "PT", "XA", "RF", "OT", "SR", "KO", "PR",
		"SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTIMAGE", "ES", "SC", "IO", "PX", "OP", "OPT"} {
		if code == "SC" {
			// SC is a SOP class, not a modality Defined Term: text only.
			if v := ModalityValue(code); v.Text != "SC" || len(v.Code) != 0 {
				t.Errorf("ModalityValue(SC) = %+v", v)
			}
			continue
		}
		v := ModalityValue(code)
		if v == nil || len(v.Code) != 1 || v.Code[0].Value != code || v.Code[0].Type != ModalityVocabulary || v.Text == code {
			t.Errorf("ModalityValue(%q) = %+v", code, v)
		}
	}
	cases := []struct {
		in, text, code string
	}{
		{"CT", "Computed Tomography", "CT"},
		{"ct ", "Computed Tomography", "CT"},
		{"MR\\CT", "Magnetic Resonance", "MR"},
		{"PT", "Positron Emission Tomography (PET)", "PT"},
		{"XA", "X-Ray Angiography", "XA"},
		{"ZZZ", "ZZZ", ""},
	}
	for _, c := range cases {
		v := ModalityValue(c.in)
		code := ""
		if len(v.Code) > 0 {
			code = v.Code[0].Value
		}
		if v.Text != c.text || code != c.code {
			t.Errorf("ModalityValue(%q) = %q/%q, want %q/%q", c.in, v.Text, code, c.text, c.code)
		}
	}
	if ModalityValue("  ") != nil {
		t.Error("empty modality should give nil")
	}
}
