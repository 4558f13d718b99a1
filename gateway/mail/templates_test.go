package mail_test

import (
	"bytes"
	"errors"
	"flag"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dicomgate/gateway/mail"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	inv := invitation()
	pickup, err := mail.PickupMail("anna@example.org", inv)
	if err != nil {
		t.Fatal(err)
	}
	connect, err := mail.ConnectMail("anna@example.org", inv)
	if err != nil {
		t.Fatal(err)
	}
	test, err := mail.TestMail("ops@hospital.example", mail.TestMailData{
		Institution: "St. Example Hospital",
		Server:      "smtp.hospital.example:587",
		Sent:        time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	var letter bytes.Buffer
	if err := mail.WritePickupLetter(&letter, inv); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    mail.Message
	}{
		{"pickup", pickup},
		{"connect", connect},
		{"test", test},
	} {
		golden(t, tc.name+".txt", "Subject: "+tc.m.Subject+"\n\n"+tc.m.Text)
		golden(t, tc.name+".html", tc.m.HTML)
	}
	golden(t, "letter.html", letter.String())

	// The parts the issue asks for, in every rendering of the pick-up code.
	for name, body := range map[string]string{
		"pickup text": pickup.Text, "pickup html": html.UnescapeString(pickup.HTML), "letter": html.UnescapeString(letter.String()),
	} {
		for _, want := range []string{inv.FriendlyName, inv.IdentityCode, wantLink, "Tuesday 1 April 2025", inv.Institution} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		for _, secret := range []string{secretQuestion, secretAnswer} {
			if strings.Contains(body, secret) {
				t.Errorf("%s contains the secret %q", name, secret)
			}
		}
	}
	if !strings.Contains(connect.Text, "target=CONNECT&targetqs=packageid%3dJKYZ-QNMN-VHRX-ZGNR-GZNH") {
		t.Errorf("connect mail lacks the CONNECT link")
	}
}

func TestRedirectURL(t *testing.T) {
	const code = "JKYZ-QNMN-VHRX-ZGNR-GZNH"
	for _, tc := range []struct {
		base, target, code string
		want               string
	}{
		{"https://hv.example.org", mail.TargetPickup, code, "https://hv.example.org/redirect.aspx?target=PICKUP&targetqs=packageid%3d" + code},
		{"https://hv.example.org/", mail.TargetConnect, code, "https://hv.example.org/redirect.aspx?target=CONNECT&targetqs=packageid%3d" + code},
		{"http://127.0.0.1:8080/shell", mail.TargetPickup, code, "http://127.0.0.1:8080/shell/redirect.aspx?target=PICKUP&targetqs=packageid%3d" + code},
		{"https://hv.example.org", "HOME", code, ""},
		{"https://hv.example.org", mail.TargetPickup, "jkyz-qnmn-vhrx-zgnr-gznh", ""},
		{"https://hv.example.org", mail.TargetPickup, code + "&x=1", ""},
		{"https://hv.example.org", mail.TargetPickup, "", ""},
		{"javascript:alert(1)", mail.TargetPickup, code, ""},
		{"/relative", mail.TargetPickup, code, ""},
		{"https://user:pw@hv.example.org", mail.TargetPickup, code, ""},
		{"https://hv.example.org/?a=b", mail.TargetPickup, code, ""},
	} {
		got, err := mail.RedirectURL(tc.base, tc.target, tc.code)
		if tc.want == "" {
			if !errors.Is(err, mail.ErrInvalidMessage) {
				t.Errorf("RedirectURL(%q, %q, %q) = %q, %v; want ErrInvalidMessage", tc.base, tc.target, tc.code, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("RedirectURL(%q, %q, %q) = %q, %v; want %q", tc.base, tc.target, tc.code, got, err, tc.want)
		}
	}
}

func TestInvitationInvalid(t *testing.T) {
	for name, mod := range map[string]func(*mail.Invitation){
		"empty friendly name":  func(i *mail.Invitation) { i.FriendlyName = " " },
		"empty institution":    func(i *mail.Invitation) { i.Institution = "" },
		"newline in name":      func(i *mail.Invitation) { i.FriendlyName = "Anna\r\nBcc: x@evil.example" },
		"long institution":     func(i *mail.Invitation) { i.Institution = strings.Repeat("x", 300) },
		"no expiry":            func(i *mail.Invitation) { i.Expires = time.Time{} },
		"bad code":             func(i *mail.Invitation) { i.IdentityCode = "1234" },
		"bad public URL":       func(i *mail.Invitation) { i.PublicURL = "ftp://x" },
		"bad recipient (mail)": func(i *mail.Invitation) {},
	} {
		t.Run(name, func(t *testing.T) {
			inv := invitation()
			mod(&inv)
			to := "anna@example.org"
			if name == "bad recipient (mail)" {
				to = "anna"
			}
			if _, err := mail.PickupMail(to, inv); !errors.Is(err, mail.ErrInvalidMessage) {
				t.Errorf("PickupMail = %v, want ErrInvalidMessage", err)
			}
			if name != "bad recipient (mail)" {
				if err := mail.WritePickupLetter(&bytes.Buffer{}, inv); !errors.Is(err, mail.ErrInvalidMessage) {
					t.Errorf("WritePickupLetter = %v, want ErrInvalidMessage", err)
				}
			}
		})
	}
}

// FuzzPickupMail renders the pick-up mail and letter from arbitrary names:
// rendering never panics, and markup in a name never reaches the HTML
// unescaped.
func FuzzPickupMail(f *testing.F) {
	f.Add("Anna Müller", "St. Example Hospital")
	f.Add("<script>alert(1)</script>", "A & B <Clinic>")
	f.Add("\"onmouseover=x", "Zürich\u00a0Radiologie")
	baseMail, err := mail.PickupMail("anna@example.org", invitation())
	if err != nil {
		f.Fatal(err)
	}
	var baseLetter bytes.Buffer
	if err := mail.WritePickupLetter(&baseLetter, invitation()); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, institution string) {
		inv := invitation()
		inv.FriendlyName, inv.Institution = name, institution
		m, err := mail.PickupMail("anna@example.org", inv)
		var letter bytes.Buffer
		lerr := mail.WritePickupLetter(&letter, inv)
		if (err == nil) != (lerr == nil) {
			t.Fatalf("mail and letter disagree: %v / %v", err, lerr)
		}
		if err != nil {
			if !errors.Is(err, mail.ErrInvalidMessage) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Any markup that got through would add a "<"; escaped names add none.
		if got, want := strings.Count(m.HTML, "<"), strings.Count(baseMail.HTML, "<"); got != want {
			t.Errorf("HTML mail has %d tags, want %d: names not escaped", got, want)
		}
		if got, want := strings.Count(letter.String(), "<"), strings.Count(baseLetter.String(), "<"); got != want {
			t.Errorf("letter has %d tags, want %d: names not escaped", got, want)
		}
	})
}
