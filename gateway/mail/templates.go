package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net/url"
	"regexp"
	"strings"
	texttemplate "text/template"
	"time"
)

// The targets of the shell redirect interface (SPEC §1) a mail links to.
const (
	// TargetPickup starts a DOPU pick-up.
	TargetPickup = "PICKUP"
	// TargetConnect starts answering a Patient Connect request.
	TargetConnect = "CONNECT"
)

// maxNameLen bounds the free-text fields of an Invitation.
const maxNameLen = 256

// expiryLayout is how mails and letters show an expiry date.
const expiryLayout = "Monday 2 January 2006"

//go:embed templates/*.tmpl
var templateFS embed.FS

// The parsed templates never change after init, so sharing them is safe.
var (
	textTemplates = texttemplate.Must(texttemplate.New("").Option("missingkey=error").ParseFS(templateFS, "templates/*.txt.tmpl"))
	htmlTemplates = htmltemplate.Must(htmltemplate.New("").Option("missingkey=error").ParseFS(templateFS, "templates/*.html.tmpl"))
)

// identityCode is the shape SPEC §6 gives identity codes: 20 capital letters
// in 5 hyphen-separated groups of 4. Checking it keeps anything else out of
// links and mails.
var identityCode = regexp.MustCompile(`^[A-Z]{4}(-[A-Z]{4}){4}$`)

// Invitation is what a pick-up mail, a Patient Connect invitation and a
// pick-up letter show. It has no field for the secret question or answer on
// purpose: they must never travel with the code.
type Invitation struct {
	// FriendlyName is the package's or request's friendly-name (SPEC §6, §7):
	// whom the images are for, as the patient will recognise it.
	FriendlyName string
	// IdentityCode is the code the platform answered, e.g.
	// JKYZ-QNMN-VHRX-ZGNR-GZNH.
	IdentityCode string
	// PublicURL is the base URL patients reach the platform's shell at, e.g.
	// https://health.example.org; the link is PublicURL/redirect.aspx?….
	PublicURL string
	// Expires is when the code stops working; shown as a date in Expires'
	// location.
	Expires time.Time
	// Institution is the sending institution's name.
	Institution string
}

// invitationView is what the invitation templates see.
type invitationView struct {
	Subject      string
	FriendlyName string
	Institution  string
	Code         string
	Link         string
	Expires      string
}

// RedirectURL returns the shell redirect link (SPEC §1) for target
// (TargetPickup or TargetConnect) and an identity code:
// publicURL/redirect.aspx?target=T&targetqs=packageid%3dCODE.
func RedirectURL(publicURL, target, code string) (string, error) {
	if target != TargetPickup && target != TargetConnect {
		return "", fmt.Errorf("%w: unknown redirect target %q", ErrInvalidMessage, target)
	}
	if !identityCode.MatchString(code) {
		return "", fmt.Errorf("%w: identity code is not 5 groups of 4 capital letters", ErrInvalidMessage)
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return "", fmt.Errorf("%w: public URL: %w", ErrInvalidMessage, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: public URL must be an absolute http(s) URL without credentials, query or fragment", ErrInvalidMessage)
	}
	u = u.JoinPath("redirect.aspx")
	// The code is letters and hyphens only, so it needs no escaping; the
	// "=" inside targetqs is escaped as HealthVault's documentation writes
	// it, %3d.
	u.RawQuery = "target=" + target + "&targetqs=packageid%3d" + code
	return u.String(), nil
}

// view checks inv and prepares it for a template.
func (inv Invitation) view(target, subject string) (invitationView, error) {
	for _, f := range []struct{ name, v string }{
		{"friendly name", inv.FriendlyName},
		{"institution", inv.Institution},
	} {
		if strings.TrimSpace(f.v) == "" {
			return invitationView{}, fmt.Errorf("%w: empty %s", ErrInvalidMessage, f.name)
		}
		if len(f.v) > maxNameLen {
			return invitationView{}, fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidMessage, f.name, maxNameLen)
		}
		if hasControl(f.v) {
			return invitationView{}, fmt.Errorf("%w: %s contains control characters", ErrInvalidMessage, f.name)
		}
	}
	if inv.Expires.IsZero() {
		return invitationView{}, fmt.Errorf("%w: no expiry date", ErrInvalidMessage)
	}
	link, err := RedirectURL(inv.PublicURL, target, inv.IdentityCode)
	if err != nil {
		return invitationView{}, err
	}
	return invitationView{
		Subject:      subject,
		FriendlyName: inv.FriendlyName,
		Institution:  inv.Institution,
		Code:         inv.IdentityCode,
		Link:         link,
		Expires:      inv.Expires.Format(expiryLayout),
	}, nil
}

// PickupMail renders the DOPU pick-up mail to the address to: the friendly
// name, the identity code, the pick-up link, the expiry date and the
// institution.
func PickupMail(to string, inv Invitation) (Message, error) {
	v, err := inv.view(TargetPickup, "Medical images from "+inv.Institution+" are ready to pick up")
	if err != nil {
		return Message{}, err
	}
	return render(to, v.Subject, "pickup", v)
}

// ConnectMail renders the Patient Connect invitation to the address to; it
// has the same parts as the pick-up mail and links to the CONNECT target.
func ConnectMail(to string, inv Invitation) (Message, error) {
	v, err := inv.view(TargetConnect, inv.Institution+" invites you to connect your health record")
	if err != nil {
		return Message{}, err
	}
	return render(to, v.Subject, "connect", v)
}

// TestMailData is what the SMTP test mail reports.
type TestMailData struct {
	// Institution is the sending institution's name.
	Institution string
	// Server is the SMTP server as configured, host:port.
	Server string
	// Sent is when the test was requested.
	Sent time.Time
}

// TestMail renders the SMTP test mail to the address to.
func TestMail(to string, d TestMailData) (Message, error) {
	if hasControl(d.Institution) || hasControl(d.Server) || len(d.Institution) > maxNameLen || len(d.Server) > maxNameLen {
		return Message{}, fmt.Errorf("%w: test mail fields too long or with control characters", ErrInvalidMessage)
	}
	v := struct {
		Subject, Institution, Server, Sent string
	}{
		Subject:     "dicomgate SMTP test",
		Institution: d.Institution,
		Server:      d.Server,
		Sent:        d.Sent.Format(time.RFC1123Z),
	}
	return render(to, v.Subject, "test", v)
}

// WritePickupLetter writes the printable pick-up letter, a standalone HTML
// page with print styles, the alternative to the pick-up mail for patients
// without email.
func WritePickupLetter(w io.Writer, inv Invitation) error {
	v, err := inv.view(TargetPickup, "")
	if err != nil {
		return err
	}
	// Render into memory first so a template error cannot leave half a
	// letter in w; the letter is a few kilobytes.
	var b bytes.Buffer
	if err := htmlTemplates.ExecuteTemplate(&b, "letter.html.tmpl", v); err != nil {
		return fmt.Errorf("mail: render pick-up letter: %w", err)
	}
	_, err = b.WriteTo(w)
	return err
}

// render executes the text and HTML templates called name and builds the
// message.
func render(to, subject, name string, data any) (Message, error) {
	var text, html strings.Builder
	if err := textTemplates.ExecuteTemplate(&text, name+".txt.tmpl", data); err != nil {
		return Message{}, fmt.Errorf("mail: render %s text: %w", name, err)
	}
	if err := htmlTemplates.ExecuteTemplate(&html, name+".html.tmpl", data); err != nil {
		return Message{}, fmt.Errorf("mail: render %s html: %w", name, err)
	}
	m := Message{To: to, Subject: subject, Text: text.String(), HTML: html.String()}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}
