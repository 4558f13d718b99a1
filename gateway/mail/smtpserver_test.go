package mail_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Credentials the test SMTP server accepts.
const (
	testUser     = "gateway"
	testPassword = "s3cret-pässword"
)

// serverOptions configure the test SMTP server.
type serverOptions struct {
	// implicitTLS wraps the listener in TLS; otherwise STARTTLS is offered
	// when tls is set.
	implicitTLS bool
	// noTLS offers no TLS at all.
	noTLS bool
	// requireAuth refuses MAIL before a successful AUTH.
	requireAuth bool
	// rcptErr and dataErr, when set, answer RCPT or DATA.
	rcptErr error
	dataErr error
	// serverTLS is the server's certificate; a new one when nil.
	serverTLS *tls.Config
	// addr listens on a given address (to bring a server up on a port a
	// client already tries); 127.0.0.1:0 when empty.
	addr string
}

// received is one message the test server accepted.
type received struct {
	from, to string
	data     []byte
	user     string // authenticated user, "" if none
	tls      bool
	mech     string
}

// testServer is a real SMTP server (emersion/go-smtp) on loopback.
type testServer struct {
	addr      string
	clientTLS *tls.Config
	msgs      chan received

	mu       sync.Mutex
	attempts int // MAIL commands seen
	rejected int
}

// newCert makes a self-signed certificate for 127.0.0.1 and localhost and
// returns the server's TLS configuration and a client configuration that
// trusts it.
func newCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dicomgate test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client
}

// startServer starts a test SMTP server; it stops when the test ends.
func startServer(t *testing.T, opt serverOptions) *testServer {
	t.Helper()
	serverTLS, clientTLS := newCert(t)
	if opt.serverTLS != nil {
		serverTLS, clientTLS = opt.serverTLS, nil
	}
	ts := &testServer{clientTLS: clientTLS, msgs: make(chan received, 16)}
	addr := opt.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{ts: ts, opt: opt, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	switch {
	case opt.noTLS:
	case opt.implicitTLS:
		l = tls.NewListener(l, serverTLS)
	default:
		srv.TLSConfig = serverTLS
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ts
}

// port returns the server's port.
func (ts *testServer) port(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscan(p, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (ts *testServer) counts() (attempts, rejected int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.attempts, ts.rejected
}

// wait returns the next accepted message or fails the test.
func (ts *testServer) wait(t *testing.T) received {
	t.Helper()
	select {
	case m := <-ts.msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message reached the SMTP server")
		return received{}
	}
}

// session is one SMTP connection to the test server.
type session struct {
	ts   *testServer
	opt  serverOptions
	conn *smtp.Conn
	user string
	mech string
	from string
	to   string
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, "CRAM-MD5"} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if username != testUser || password != testPassword {
				return errors.New("invalid credentials")
			}
			s.user, s.mech = username, mech
			return nil
		}), nil
	case "CRAM-MD5":
		return &cramMD5Server{onSuccess: func(user string) { s.user, s.mech = user, mech }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.ts.mu.Lock()
	s.ts.attempts++
	s.ts.mu.Unlock()
	if s.opt.requireAuth && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.opt.rcptErr != nil {
		s.ts.mu.Lock()
		s.ts.rejected++
		s.ts.mu.Unlock()
		return s.opt.rcptErr
	}
	s.to = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.opt.dataErr != nil {
		s.ts.mu.Lock()
		s.ts.rejected++
		s.ts.mu.Unlock()
		return s.opt.dataErr
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.ts.msgs <- received{from: s.from, to: s.to, data: b, user: s.user, tls: isTLS, mech: s.mech}
	return nil
}

func (s *session) Reset() { s.from, s.to = "", "" }

func (s *session) Logout() error { return nil }

// cramMD5Server is the server side of CRAM-MD5 (RFC 2195), which go-sasl
// does not provide.
type cramMD5Server struct {
	challenge []byte
	onSuccess func(user string)
}

func (c *cramMD5Server) Next(response []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = fmt.Appendf(nil, "<%d.%d@localhost>", time.Now().UnixNano(), 42)
		return c.challenge, false, nil
	}
	user, digest, ok := bytes.Cut(response, []byte(" "))
	if !ok {
		return nil, false, errors.New("malformed CRAM-MD5 response")
	}
	mac := hmac.New(md5.New, []byte(testPassword))
	mac.Write(c.challenge)
	want := hex.EncodeToString(mac.Sum(nil))
	if string(user) != testUser || !hmac.Equal([]byte(strings.ToLower(string(digest))), []byte(want)) {
		return nil, false, errors.New("invalid credentials")
	}
	c.onSuccess(string(user))
	return nil, true, nil
}
