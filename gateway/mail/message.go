// Package mail is the gateway's email outbox: it renders the mails dicomgate
// sends to patients (the DOPU pick-up code, the Patient Connect invitation,
// an SMTP test mail) and the printable pick-up letter, keeps every message in
// a durable outbox and delivers it over SMTP.
//
// Standards: messages are Internet Message Format (RFC 5322) with MIME
// multipart/alternative bodies (RFC 2045, RFC 2046); delivery is SMTP
// (RFC 5321) with STARTTLS (RFC 3207) or implicit TLS (RFC 8314) and SMTP
// AUTH (RFC 4954: PLAIN, LOGIN, CRAM-MD5). The SMTP client is
// github.com/wneessen/go-mail.
//
// Delivery is at-least-once with a narrow window: a message is marked sent
// right after the server accepted the DATA, so it is sent twice only when
// the process dies between the server's 250 reply and that update. A message
// a dead process left in state sending returns to queued when its lease
// runs out.
//
// Mail bodies carry the identity code by necessity; this package never logs
// bodies, and the secret question and answer are not among the inputs of any
// template, so they cannot reach a mail or a letter.
package mail

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a stored message. Mails dicomgate renders are far below them;
// they bound what a caller can put in the outbox.
const (
	// MaxAddressLen is RFC 5321's limit on a forward-path (4.5.3.1.3).
	MaxAddressLen = 256
	// MaxSubjectLen keeps a subject within RFC 5322's line limit.
	MaxSubjectLen = 998
	// MaxBodyLen bounds each body (text and HTML separately).
	MaxBodyLen = 1 << 20
)

// ErrInvalidMessage reports a message that cannot be queued or rendered.
var ErrInvalidMessage = errors.New("mail: invalid message")

// Message is one mail in the outbox. Text is required; when HTML is set too
// the mail is sent as multipart/alternative with both.
type Message struct {
	// To is the single recipient, an RFC 5322 address ("a@b.example" or
	// "Name <a@b.example>").
	To      string
	Subject string
	Text    string
	HTML    string
}

// Validate reports whether m can be queued: a parseable recipient, a
// single-line subject and bodies within the limits.
func (m Message) Validate() error {
	if len(m.To) > MaxAddressLen {
		return fmt.Errorf("%w: recipient longer than %d bytes", ErrInvalidMessage, MaxAddressLen)
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return fmt.Errorf("%w: recipient: %w", ErrInvalidMessage, err)
	}
	if len(m.Subject) > MaxSubjectLen {
		return fmt.Errorf("%w: subject longer than %d bytes", ErrInvalidMessage, MaxSubjectLen)
	}
	if hasControl(m.Subject) {
		return fmt.Errorf("%w: subject contains control characters", ErrInvalidMessage)
	}
	for _, f := range []string{m.To, m.Subject, m.Text, m.HTML} {
		if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
			return fmt.Errorf("%w: not valid UTF-8 text", ErrInvalidMessage)
		}
	}
	if m.Text == "" {
		return fmt.Errorf("%w: empty text body", ErrInvalidMessage)
	}
	if len(m.Text) > MaxBodyLen || len(m.HTML) > MaxBodyLen {
		return fmt.Errorf("%w: body longer than %d bytes", ErrInvalidMessage, MaxBodyLen)
	}
	return nil
}

// hasControl reports whether s contains a control character; a CR or LF in a
// header value would let the value start a header of its own.
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
