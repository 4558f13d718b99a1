package mail_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"

	"github.com/emersion/go-smtp"
)

// The secret question and answer of the test package: they exist next to
// the invitation in the gateway but must never reach a mail.
const (
	secretQuestion = "What is the name of your first pet?"
	secretAnswer   = "Bello-Rex-1987"
)

func invitation() mail.Invitation {
	return mail.Invitation{
		FriendlyName: "Anna Müller",
		IdentityCode: "JKYZ-QNMN-VHRX-ZGNR-GZNH",
		PublicURL:    "https://health.example.org",
		Expires:      time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC),
		Institution:  "St. Example Hospital",
	}
}

const wantLink = "https://health.example.org/redirect.aspx?target=PICKUP&targetqs=packageid%3dJKYZ-QNMN-VHRX-ZGNR-GZNH"

func openStore(t *testing.T) *mailsql.Store {
	t.Helper()
	s, err := mailsql.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newTransport returns an SMTP transport to the test server on port; auth
// "none" sends no credentials.
func newTransport(t *testing.T, port int, clientTLS *tls.Config, sec mail.Security, auth mail.AuthMechanism) *mail.SMTP {
	t.Helper()
	cfg := mail.SMTPConfig{
		Host:      "127.0.0.1",
		Port:      port,
		Security:  sec,
		Username:  testUser,
		Password:  testPassword,
		Auth:      auth,
		From:      "Radiology <imaging@hospital.example>",
		HELO:      "gateway.hospital.example",
		Timeout:   5 * time.Second,
		TLSConfig: clientTLS,
	}
	if auth == "none" {
		cfg.Username, cfg.Password, cfg.Auth = "", "", ""
	}
	tr, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// fastConfig retries quickly so tests run in well under a second.
var fastConfig = mail.Config{
	MaxAttempts:    5,
	BaseDelay:      40 * time.Millisecond,
	MaxDelay:       200 * time.Millisecond,
	Lease:          20 * time.Second,
	AttemptTimeout: 5 * time.Second,
	PollInterval:   20 * time.Millisecond,
}

// runOutbox runs o until the test ends.
func runOutbox(t *testing.T, o *mail.Outbox) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitFor polls the store until cond holds for message id.
func waitFor(t *testing.T, s mail.Store, id int64, what string, cond func(mail.Record) bool) mail.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d never %s; last state %+v", id, what, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func inState(s mail.State) func(mail.Record) bool {
	return func(r mail.Record) bool { return r.State == s }
}

// parts parses a received message and returns its headers and the decoded
// bodies by content type.
func parts(t *testing.T, data []byte) (netmail.Header, map[string]string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative", mt)
	}
	bodies := make(map[string]string)
	var order []string
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		switch strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, p)
		case "quoted-printable": // NextPart decodes it itself and drops the header
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		bodies[ct] = string(b)
		order = append(order, ct)
	}
	if strings.Join(order, ",") != "text/plain,text/html" {
		t.Errorf("parts %v, want text/plain then text/html", order)
	}
	return msg.Header, bodies
}

// TestDeliverPickupMail delivers the DOPU mail through the outbox to a real
// SMTP server in every security mode and checks what arrived.
func TestDeliverPickupMail(t *testing.T) {
	tests := []struct {
		name    string
		server  serverOptions
		sec     mail.Security
		auth    mail.AuthMechanism
		wantTLS bool
	}{
		{"starttls mandatory, PLAIN", serverOptions{requireAuth: true}, mail.SecurityStartTLS, mail.AuthPlain, true},
		{"implicit TLS, PLAIN", serverOptions{implicitTLS: true, requireAuth: true}, mail.SecurityTLS, mail.AuthPlain, true},
		{"starttls opportunistic, auto", serverOptions{requireAuth: true}, mail.SecurityStartTLSOpportunistic, mail.AuthAuto, true},
		{"starttls, CRAM-MD5", serverOptions{requireAuth: true}, mail.SecurityStartTLS, mail.AuthCRAMMD5, true},
		{"opportunistic without TLS, no AUTH", serverOptions{noTLS: true}, mail.SecurityStartTLSOpportunistic, "none", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.server)
			tr := newTransport(t, ts.port(t), ts.clientTLS, tc.sec, tc.auth)
			store := openStore(t)
			var logs bytes.Buffer
			o := mail.NewOutbox(store, tr, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), fastConfig)
			m, err := mail.PickupMail("Anna Müller <anna@example.org>", invitation())
			if err != nil {
				t.Fatal(err)
			}
			id, err := o.Enqueue(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			runOutbox(t, o)
			got := ts.wait(t)
			rec := waitFor(t, store, id, "sent", inState(mail.StateSent))
			if rec.Attempts != 1 || rec.Sent.IsZero() {
				t.Errorf("sent record: %+v", rec)
			}

			if got.tls != tc.wantTLS {
				t.Errorf("TLS used = %v, want %v", got.tls, tc.wantTLS)
			}
			if tc.server.requireAuth && got.user != testUser {
				t.Errorf("authenticated as %q, want %q", got.user, testUser)
			}
			if tc.auth == mail.AuthCRAMMD5 && got.mech != "CRAM-MD5" {
				t.Errorf("mechanism %q, want CRAM-MD5", got.mech)
			}
			if got.from != "imaging@hospital.example" || got.to != "anna@example.org" {
				t.Errorf("envelope %q -> %q", got.from, got.to)
			}
			hdr, bodies := parts(t, got.data)
			subject, err := new(mime.WordDecoder).DecodeHeader(hdr.Get("Subject"))
			if err != nil || subject != m.Subject {
				t.Errorf("Subject %q (%v), want %q", subject, err, m.Subject)
			}
			if to, err := hdr.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "anna@example.org" || to[0].Name != "Anna Müller" {
				t.Errorf("To = %v, %v", to, err)
			}
			if hdr.Get("Message-Id") == "" || hdr.Get("Date") == "" {
				t.Errorf("missing Message-Id or Date: %v", hdr)
			}
			text, htm := bodies["text/plain"], html.UnescapeString(bodies["text/html"])
			for name, body := range map[string]string{"text": text, "html": htm} {
				for _, want := range []string{"JKYZ-QNMN-VHRX-ZGNR-GZNH", wantLink, "Anna Müller", "St. Example Hospital", "Tuesday 1 April 2025"} {
					if !strings.Contains(body, want) {
						t.Errorf("%s part lacks %q", name, want)
					}
				}
			}
			for _, secret := range []string{secretQuestion, secretAnswer, "first pet", "Bello"} {
				if bytes.Contains(got.data, []byte(secret)) || strings.Contains(text+htm, secret) {
					t.Errorf("mail contains the secret %q", secret)
				}
			}
			if strings.Contains(logs.String(), "JKYZ") {
				t.Errorf("log contains the identity code:\n%s", logs.String())
			}
		})
	}
}

// TestMandatoryStartTLSRefusesPlaintext checks that mandatory STARTTLS
// sends nothing, and no password, to a server without TLS.
func TestMandatoryStartTLSRefusesPlaintext(t *testing.T) {
	ts := startServer(t, serverOptions{noTLS: true})
	tr := newTransport(t, ts.port(t), ts.clientTLS, mail.SecurityStartTLS, mail.AuthPlain)
	m, err := mail.TestMail("ops@hospital.example", mail.TestMailData{Institution: "St. Example Hospital", Server: ts.addr, Sent: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Send(context.Background(), m)
	if err == nil {
		t.Fatal("Send over a server without STARTTLS succeeded")
	}
	if errors.Is(err, mail.ErrRejected) {
		t.Errorf("missing STARTTLS is a configuration problem, not a permanent rejection: %v", err)
	}
	if a, _ := ts.counts(); a != 0 {
		t.Errorf("server saw %d MAIL commands", a)
	}
}

// TestRetryUntilServerUp starts with no SMTP server listening: the outbox
// retries with backoff and delivers once the server comes up, exactly once.
func TestRetryUntilServerUp(t *testing.T) {
	// Find a free port, then leave it closed: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	serverTLS, clientTLS := newCert(t)
	store := openStore(t)
	o := mail.NewOutbox(store, newTransport(t, port, clientTLS, mail.SecurityStartTLS, mail.AuthPlain), nil, fastConfig)
	m, err := mail.ConnectMail("anna@example.org", invitation())
	if err != nil {
		t.Fatal(err)
	}
	id, err := o.Enqueue(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	runOutbox(t, o)

	r := waitFor(t, store, id, "retried twice", func(r mail.Record) bool { return r.Attempts >= 2 && r.State == mail.StateQueued })
	if !strings.Contains(r.LastError, "refused") {
		t.Errorf("last error %q, want the connection refusal", r.LastError)
	}
	if !r.NextAttempt.After(r.Updated.Add(-time.Millisecond)) {
		t.Errorf("next attempt %v not after the failure %v", r.NextAttempt, r.Updated)
	}

	ts := startServer(t, serverOptions{addr: addr, requireAuth: true, serverTLS: serverTLS})
	got := ts.wait(t)
	rec := waitFor(t, store, id, "sent", inState(mail.StateSent))
	if rec.Attempts < 3 || rec.Attempts > fastConfig.MaxAttempts {
		t.Errorf("sent after %d attempts", rec.Attempts)
	}
	_, bodies := parts(t, got.data)
	if !strings.Contains(bodies["text/plain"], "target=CONNECT&targetqs=packageid%3dJKYZ-QNMN-VHRX-ZGNR-GZNH") {
		t.Errorf("connect mail lacks the CONNECT link:\n%s", bodies["text/plain"])
	}
	time.Sleep(5 * fastConfig.PollInterval)
	if a, _ := ts.counts(); a != 1 {
		t.Errorf("server saw %d deliveries, want 1", a)
	}
}

// TestPermanentAndExhausted covers the two ways a message fails: a
// permanent 5xx refusal fails it at once; a 4xx on every attempt fails it
// after MaxAttempts. Either way the reason is kept.
func TestPermanentAndExhausted(t *testing.T) {
	tests := []struct {
		name         string
		server       serverOptions
		wantAttempts int
		wantErr      string
	}{
		{"550 recipient", serverOptions{rcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}}, 1, "550"},
		{"554 data", serverOptions{dataErr: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message refused"}}, 1, "Message refused"},
		{"451 every time", serverOptions{dataErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}}, fastConfig.MaxAttempts, "451"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.server)
			store := openStore(t)
			o := mail.NewOutbox(store, newTransport(t, ts.port(t), ts.clientTLS, mail.SecurityStartTLS, mail.AuthPlain), nil, fastConfig)
			m, err := mail.PickupMail("anna@example.org", invitation())
			if err != nil {
				t.Fatal(err)
			}
			id, err := o.Enqueue(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			runOutbox(t, o)
			r := waitFor(t, store, id, "failed", inState(mail.StateFailed))
			if r.Attempts != tc.wantAttempts {
				t.Errorf("failed after %d attempts, want %d", r.Attempts, tc.wantAttempts)
			}
			if !strings.Contains(r.LastError, tc.wantErr) {
				t.Errorf("last error %q lacks %q", r.LastError, tc.wantErr)
			}
			if _, rejected := ts.counts(); rejected != tc.wantAttempts {
				t.Errorf("server refused %d times, want %d", rejected, tc.wantAttempts)
			}
			list, err := store.List(context.Background(), 10)
			if err != nil || len(list) != 1 || list[0].State != mail.StateFailed {
				t.Errorf("failed message not visible in the listing: %+v, %v", list, err)
			}
		})
	}
}

// TestLeaseExpiryRequeue simulates a sender that died after claiming a
// message: once the lease is over, a running outbox requeues and delivers
// it.
func TestLeaseExpiryRequeue(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, serverOptions{requireAuth: true})
	store := openStore(t)
	m, err := mail.PickupMail("anna@example.org", invitation())
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.Add(ctx, m, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// The dead sender claimed it ten minutes ago with a one-minute lease.
	dead, err := store.Claim(ctx, time.Now().Add(-10*time.Minute), time.Minute)
	if err != nil || dead.ID != id {
		t.Fatalf("Claim = %+v, %v", dead, err)
	}

	o := mail.NewOutbox(store, newTransport(t, ts.port(t), ts.clientTLS, mail.SecurityStartTLS, mail.AuthPlain), nil, fastConfig)
	runOutbox(t, o)
	ts.wait(t)
	r := waitFor(t, store, id, "sent", inState(mail.StateSent))
	if r.Attempts != 2 {
		t.Errorf("attempts %d, want 2 (the dead one and the delivery)", r.Attempts)
	}
	// The dead sender waking up cannot settle the message any more.
	if err := store.Retry(ctx, id, dead.Attempts, "late", time.Now()); !errors.Is(err, mail.ErrLeaseLost) {
		t.Errorf("stale Retry = %v, want ErrLeaseLost", err)
	}
}

// TestLiveLeaseNotStolen checks that a message within its lease is left to
// its sender.
func TestLiveLeaseNotStolen(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, serverOptions{})
	store := openStore(t)
	m, _ := mail.PickupMail("anna@example.org", invitation())
	id, err := store.Add(ctx, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Claim(ctx, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	o := mail.NewOutbox(store, newTransport(t, ts.port(t), ts.clientTLS, mail.SecurityStartTLS, "none"), nil, fastConfig)
	runOutbox(t, o)
	time.Sleep(10 * fastConfig.PollInterval)
	r, err := store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != mail.StateSending || r.Attempts != 1 {
		t.Errorf("leased message touched: %+v", r)
	}
	if a, _ := ts.counts(); a != 0 {
		t.Errorf("server saw %d attempts", a)
	}
}

// TestNoSMTPStaysQueued checks that without SMTP configuration mail is kept,
// not failed.
func TestNoSMTPStaysQueued(t *testing.T) {
	store := openStore(t)
	o := mail.NewOutbox(store, nil, nil, fastConfig)
	m, err := mail.PickupMail("anna@example.org", invitation())
	if err != nil {
		t.Fatal(err)
	}
	id, err := o.Enqueue(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*fastConfig.PollInterval)
	defer cancel()
	if err := o.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r, err := store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != mail.StateQueued || r.Attempts != 0 || r.LastError != "" {
		t.Errorf("without SMTP: %+v, want untouched queued", r)
	}
}

func TestEnqueueRejectsInvalid(t *testing.T) {
	o := mail.NewOutbox(openStore(t), nil, nil, fastConfig)
	for _, m := range []mail.Message{
		{To: "not an address", Subject: "s", Text: "t"},
		{To: "a@example.org", Subject: "two\r\nBcc: x@evil.example", Text: "t"},
		{To: "a@example.org", Subject: "s"},
		{To: "a@example.org", Subject: "s", Text: "bad \xff utf-8"},
		{To: "a@example.org", Subject: "s", Text: strings.Repeat("x", mail.MaxBodyLen+1)},
	} {
		if _, err := o.Enqueue(context.Background(), m); !errors.Is(err, mail.ErrInvalidMessage) {
			t.Errorf("Enqueue(%.60q) = %v, want ErrInvalidMessage", m.Subject+"|"+m.To, err)
		}
	}
}

func TestNewSMTPConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mail.SMTPConfig
		ok   bool
		want string
	}{
		{"defaults", mail.SMTPConfig{Host: "smtp.example.org", From: "a@example.org"}, true, "smtp.example.org:587"},
		{"implicit TLS", mail.SMTPConfig{Host: "smtp.example.org", Security: mail.SecurityTLS, From: "a@example.org"}, true, "smtp.example.org:465"},
		{"none", mail.SMTPConfig{Host: "localhost", Security: mail.SecurityNone, From: "a@example.org"}, true, "localhost:25"},
		{"no host", mail.SMTPConfig{From: "a@example.org"}, false, ""},
		{"bad security", mail.SMTPConfig{Host: "h", Security: "ssl3", From: "a@example.org"}, false, ""},
		{"bad auth", mail.SMTPConfig{Host: "h", Auth: "ntlm", From: "a@example.org"}, false, ""},
		{"bad from", mail.SMTPConfig{Host: "h", From: "nobody"}, false, ""},
		{"bad port", mail.SMTPConfig{Host: "h", Port: 70000, From: "a@example.org"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := mail.NewSMTP(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewSMTP = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && s.Server() != tc.want {
				t.Errorf("Server() = %q, want %q", s.Server(), tc.want)
			}
		})
	}
}

// TestAttemptsBoundAfterCrashes checks that a message whose senders keep
// dying is failed once its attempts are used up, without another send.
func TestAttemptsBoundAfterCrashes(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, serverOptions{})
	store := openStore(t)
	m, _ := mail.PickupMail("anna@example.org", invitation())
	id, err := store.Add(ctx, m, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// MaxAttempts senders died one after another.
	for i := range fastConfig.MaxAttempts {
		now := time.Now().Add(-time.Hour + time.Duration(i)*time.Minute)
		if _, err := store.RequeueExpired(ctx, now); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Claim(ctx, now, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	o := mail.NewOutbox(store, newTransport(t, ts.port(t), ts.clientTLS, mail.SecurityStartTLS, "none"), nil, fastConfig)
	runOutbox(t, o)
	r := waitFor(t, store, id, "failed", inState(mail.StateFailed))
	if r.Attempts != fastConfig.MaxAttempts+1 || !strings.Contains(r.LastError, "lease expired") {
		t.Errorf("failed record: attempts %d, error %q", r.Attempts, r.LastError)
	}
	if a, _ := ts.counts(); a != 0 {
		t.Errorf("server saw %d attempts", a)
	}
}
