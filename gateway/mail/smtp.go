package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Security is how the connection to the SMTP server is protected.
type Security string

// The connection security modes.
const (
	// SecurityStartTLS requires STARTTLS (RFC 3207) and refuses to send if
	// the server does not offer it or the certificate does not verify.
	SecurityStartTLS Security = "starttls"
	// SecurityStartTLSOpportunistic uses STARTTLS when the server offers it
	// and sends in the clear otherwise.
	SecurityStartTLSOpportunistic Security = "starttls-opportunistic"
	// SecurityTLS is implicit TLS from the first byte (RFC 8314, port 465).
	SecurityTLS Security = "tls"
	// SecurityNone never encrypts; for a relay on the same host only.
	SecurityNone Security = "none"
)

// AuthMechanism is the SASL mechanism used for SMTP AUTH (RFC 4954).
type AuthMechanism string

// The supported mechanisms. AuthAuto, the zero value, picks the strongest
// mechanism the server offers when a username is set.
const (
	AuthAuto    AuthMechanism = ""
	AuthPlain   AuthMechanism = "plain"
	AuthLogin   AuthMechanism = "login"
	AuthCRAMMD5 AuthMechanism = "cram-md5"
)

// DefaultSMTPTimeout bounds connecting to and talking with the SMTP server
// when SMTPConfig.Timeout is zero.
const DefaultSMTPTimeout = 30 * time.Second

// ErrRejected marks a permanent (5xx) refusal of a message by the SMTP
// server: retrying the same message cannot succeed (RFC 5321 4.2.1).
var ErrRejected = errors.New("mail: rejected by SMTP server")

// ErrNoSMTP reports an SMTP configuration without a host.
var ErrNoSMTP = errors.New("mail: no SMTP server configured")

// SMTPConfig says how to reach the SMTP server. The zero Port means the
// usual port for the security mode: 465 for SecurityTLS, 587 for STARTTLS,
// 25 for SecurityNone.
type SMTPConfig struct {
	Host     string
	Port     int
	Security Security
	// Username and Password enable SMTP AUTH when Username is set.
	Username string
	Password string
	Auth     AuthMechanism
	// From is the sender address, e.g. "Radiology <imaging@hospital.example>".
	From string
	// HELO is the name sent in EHLO; "localhost" when empty.
	HELO string
	// Timeout bounds the connection and each command; DefaultSMTPTimeout
	// when zero.
	Timeout time.Duration
	// TLSConfig overrides the TLS settings (e.g. a private CA); when nil the
	// system roots verify the server's name.
	TLSConfig *tls.Config
}

// SMTP delivers messages to one SMTP server. It opens one connection per
// message, which suits the outbox's low volume and keeps no state between
// sends.
type SMTP struct {
	cfg  SMTPConfig
	from string
}

var _ Transport = (*SMTP)(nil)

// NewSMTP checks cfg and returns a transport for it. It does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, ErrNoSMTP
	}
	switch cfg.Security {
	case SecurityStartTLS, SecurityStartTLSOpportunistic, SecurityNone:
	case SecurityTLS:
	case "":
		cfg.Security = SecurityStartTLS
	default:
		return nil, fmt.Errorf("mail: unknown SMTP security %q", cfg.Security)
	}
	switch cfg.Auth {
	case AuthAuto, AuthPlain, AuthLogin, AuthCRAMMD5:
	default:
		return nil, fmt.Errorf("mail: unknown SMTP auth mechanism %q", cfg.Auth)
	}
	if cfg.Port == 0 {
		switch cfg.Security {
		case SecurityTLS:
			cfg.Port = 465
		case SecurityNone:
			cfg.Port = 25
		default:
			cfg.Port = 587
		}
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mail: SMTP port %d out of range", cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	// Parse From once, so a bad sender is a configuration error and not a
	// failure of every message.
	probe := gomail.NewMsg()
	if err := probe.From(cfg.From); err != nil {
		return nil, fmt.Errorf("mail: sender address %q: %w", cfg.From, err)
	}
	return &SMTP{cfg: cfg, from: cfg.From}, nil
}

// Server returns host:port of the configured server.
func (s *SMTP) Server() string {
	return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
}

// Timeout returns the bound on one delivery attempt's connection.
func (s *SMTP) Timeout() time.Duration { return s.cfg.Timeout }

// Send delivers m in one SMTP transaction. A nil error means the server
// accepted the message (250 after DATA). A permanent refusal of the message
// (a 5xx reply to MAIL, RCPT or DATA) wraps ErrRejected; every other error
// (connection, TLS, authentication, 4xx) is worth retrying.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	client, err := gomail.NewClient(s.cfg.Host, s.options()...)
	if err != nil {
		return fmt.Errorf("mail: SMTP client: %w", err)
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if err == nil {
		return nil
	}
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return fmt.Errorf("mail: SMTP %s: %w", s.Server(), err)
}

// options maps the configuration onto go-mail's client options. go-mail
// keeps per-connection state in its Client, so Send makes a fresh one each
// time.
func (s *SMTP) options() []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
	}
	if s.cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.HELO))
	}
	tlsCfg := s.cfg.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12}
	}
	opts = append(opts, gomail.WithTLSConfig(tlsCfg))
	switch s.cfg.Security {
	case SecurityTLS:
		opts = append(opts, gomail.WithSSL())
	case SecurityStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case SecurityStartTLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case SecurityNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.Username != "" {
		mech := gomail.SMTPAuthAutoDiscover
		switch s.cfg.Auth {
		case AuthPlain:
			mech = gomail.SMTPAuthPlain
		case AuthLogin:
			mech = gomail.SMTPAuthLogin
		case AuthCRAMMD5:
			mech = gomail.SMTPAuthCramMD5
		}
		opts = append(opts,
			gomail.WithSMTPAuth(mech),
			gomail.WithUsername(s.cfg.Username),
			gomail.WithPassword(s.cfg.Password),
		)
	}
	return opts
}

// build turns m into a go-mail message: text/plain alone, or
// multipart/alternative with text/plain first and text/html last, the order
// RFC 2046 5.1.4 asks for (last is preferred).
func (s *SMTP) build(m Message) (*gomail.Msg, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return nil, fmt.Errorf("mail: sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("%w: recipient: %w", ErrInvalidMessage, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}
