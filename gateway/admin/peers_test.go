package admin_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"dicomgate/platform/client"
	"dicomgate/platform/platformtest"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
)

// smtpServer is a real SMTP server (emersion/go-smtp) on loopback that
// keeps what it receives.
type smtpServer struct {
	addr string
	mu   sync.Mutex
	msgs []smtpMessage
}

type smtpMessage struct {
	from string
	to   []string
	data []byte
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{addr: ln.Addr().String()}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{srv: s}, nil }

func (s *smtpServer) received() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

type smtpSession struct {
	srv *smtpServer
	msg smtpMessage
}

func (s *smtpSession) Reset()        { s.msg = smtpMessage{} }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.msg)
	s.srv.mu.Unlock()
	return nil
}

// platformEnv is the bundled HealthVault-compatible platform on loopback
// (platformtest) with the gateway's application registered (credentials
// in credsDir) and one patient's record authorized for it.
type platformEnv struct {
	url      string
	credsDir string
	store    store.Store
	client   *client.Client
	personID string
	recordID string
}

func startPlatform(t *testing.T) *platformEnv {
	t.Helper()
	// No garbage collection: tests look at packages after their actions.
	p := platformtest.Start(t, platformtest.Options{Configure: func(c *server.Config) { c.GCInterval = -1 }})
	rec, err := p.Store.GetRecord(context.Background(), p.RecordID)
	if err != nil {
		t.Fatal(err)
	}
	return &platformEnv{url: p.URL, credsDir: filepath.Join(p.DataDir, "app"), store: p.Store, client: p.Client,
		personID: rec.PersonID, recordID: p.RecordID}
}
