package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"dicomgate/bench/ctstudy"
	"dicomgate/gateway/keyfile"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/client"
)

// smtpSink is a real SMTP server on loopback that keeps what it receives.
type smtpSink struct {
	addr string
	mu   sync.Mutex
	msgs [][]byte
}

type sinkSession struct{ s *smtpSink }

func (s sinkSession) Reset()                                      {}
func (s sinkSession) Logout() error                               { return nil }
func (s sinkSession) Mail(from string, _ *smtp.MailOptions) error { return nil }
func (s sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error   { return nil }
func (s sinkSession) AuthPlain(username, password string) error   { return nil }
func (s sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.s.mu.Lock()
	s.s.msgs = append(s.s.msgs, b)
	s.s.mu.Unlock()
	return nil
}

func startSMTP(t *testing.T) *smtpSink {
	t.Helper()
	sink := &smtpSink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return sinkSession{sink}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sink
}

func (s *smtpSink) wait(t *testing.T, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		if len(s.msgs) > 0 {
			m := s.msgs[0]
			s.mu.Unlock()
			return m
		}
		s.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no mail arrived")
	return nil
}

var codeRE = regexp.MustCompile(`\b[B-DF-HJ-NP-TV-Z]{4}(-[B-DF-HJ-NP-TV-Z]{4}){4}\b`)

// TestDOPU registers a pick-up, sends the study with storescu, and follows
// the code from the mail the test's SMTP server receives to a pick-up on
// the platform: the things that come out of the package, decrypted with
// the answer, carry the original files.
func TestDOPU(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	sink := startSMTP(t)
	host, port, _ := net.SplitHostPort(sink.addr)
	portN, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := mail.NewSMTP(mail.SMTPConfig{Host: host, Port: portN, Security: mail.SecurityNone, From: "gateway@hospital.example"})
	if err != nil {
		t.Fatal(err)
	}
	mails, err := mailsql.OpenSQLite(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mails.Close() })
	outbox := mail.NewOutbox(mails, transport, slog.New(slog.DiscardHandler), mail.Config{PollInterval: 50 * time.Millisecond})
	octx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go outbox.Run(octx)
	key, err := keyfile.LoadOrCreate(filepath.Join(dir, "gateway.key"))
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, dir, pf.client, Config{Rules: []route.Rule{{Name: "dopu", Action: route.ActionDOPU}},
		Sealer: key, Mailer: outbox, PublicURL: pf.url, Institution: "St. Test Hospital"})

	const answer = "Fluffy The Cat"
	// The front desk's form refuses what it must.
	for field, r := range map[string]PickupRequest{
		"answer": {PatientID: "PAT-D", Email: "jane@example.org", FriendlyName: "Jane", Question: "Pet?", Answer: "short"},
		"email":  {PatientID: "PAT-D", Email: "not an address", FriendlyName: "Jane", Question: "Pet?", Answer: answer},
	} {
		var fe *FieldError
		if _, err := gw.gw.RegisterPickup(ctx, r); !errors.As(err, &fe) || fe.Field != field {
			t.Fatalf("bad %s accepted: %v", field, err)
		}
	}
	reg, err := gw.gw.RegisterPickup(ctx, PickupRequest{PatientID: "PAT-D", Email: "jane@example.org",
		FriendlyName: "Jane Doe", Question: "Name of your first pet?", Answer: answer})
	if err != nil {
		t.Fatal(err)
	}
	if !codeRE.MatchString(reg.IdentityCode) || bytes.Contains(reg.AnswerSealed, []byte("Fluffy")) {
		t.Fatalf("registration: code %q, sealed answer %q", reg.IdentityCode, reg.AnswerSealed)
	}
	studyUID, files := writeStudy(t, dir, "PAT-D")
	storescu(t, gw.addr, files...)
	st := waitState(t, gw.store, studyUID, 90*time.Second, store.StateDelivered, store.StateFailed)
	if st.State != store.StateDelivered || st.PackageCode != reg.IdentityCode {
		t.Fatalf("study = %+v", st)
	}
	after, _ := gw.store.Pickup(ctx, reg.ID)
	if len(after.AnswerSealed) != 0 || after.StudyUID != studyUID {
		t.Fatalf("after packaging: answer kept %v, study %q", len(after.AnswerSealed) != 0, after.StudyUID)
	}

	raw := sink.wait(t, 30*time.Second)
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(msg.Body)
	text := string(raw)
	if msg.Header.Get("To") == "" || !strings.Contains(text, reg.IdentityCode) || strings.Contains(text, "Fluffy") || strings.Contains(text, "first pet") {
		t.Fatalf("mail: To %q, has code %v, leaks the answer or question: %v\n%s", msg.Header.Get("To"),
			strings.Contains(text, reg.IdentityCode), strings.Contains(text, "Fluffy") || strings.Contains(text, "first pet"), body)
	}
	code := codeRE.FindString(text)

	// The patient picks the package up with the code from the mail.
	if err := pf.srv.PickUp(ctx, strings.ToLower(code), answer, pf.personID, pf.recordID); err != nil {
		t.Fatalf("pick-up: %v", err)
	}
	things := studyThings(t, pf.client, pf.recordID, studyUID)
	if len(things) != 1 {
		t.Fatalf("%d things after pick-up, want 1", len(things))
	}
	m, err := mis.ParseMIS(things[0].Data[0].Inner, mis.V2)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.BlobNames()) != 13 || len(things[0].BlobPayload.Blobs) != 13 {
		t.Fatalf("picked-up MIS names %d blobs, payload %d; want 13", len(m.BlobNames()), len(things[0].BlobPayload.Blobs))
	}
	originals := originalsOf(t, files)
	matched := 0
	for _, b := range things[0].BlobPayload.Blobs {
		if _, original := fetchBlob(t, pf.client, b, originals); original {
			matched++
		}
	}
	if matched != len(files) {
		t.Fatalf("%d of %d originals in the package", matched, len(files))
	}
	// Single pick-up.
	if err := pf.srv.PickUp(ctx, code, answer, pf.personID, pf.recordID); err == nil {
		t.Fatal("second pick-up accepted")
	}
}

// TestDOPULostReply replays a delivery whose CreateConnectPackage
// succeeded but whose reply was lost (the registration still says
// "creating"): the retry is refused a second package under the code,
// confirms the package exists, and finishes. A retry refused for a code
// that holds no package is not taken for done.
func TestDOPULostReply(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	key, err := keyfile.LoadOrCreate(filepath.Join(dir, "gateway.key"))
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, dir, pf.client, Config{Rules: []route.Rule{{Action: route.ActionDOPU}}, Sealer: key, PublicURL: pf.url})
	reg, err := gw.gw.RegisterPickup(ctx, PickupRequest{PatientID: "PAT-L", Email: "l@example.org", FriendlyName: "L", Question: "Q?", Answer: "answer-1"})
	if err != nil {
		t.Fatal(err)
	}
	studyUID, files := writeStudy(t, dir, "PAT-L")
	storescu(t, gw.addr, files...)
	if st := waitState(t, gw.store, studyUID, 60*time.Second, store.StateDelivered, store.StateFailed); st.State != store.StateDelivered {
		t.Fatalf("study = %+v", st)
	}
	// Rewind the registration and the study to just before the reply.
	sealed, _ := key.Seal([]byte("answer-1"))
	p, _ := gw.store.Pickup(ctx, reg.ID)
	p.State, p.AnswerSealed = PickupCreating, sealed
	if err := gw.store.UpdatePickup(ctx, p); err != nil {
		t.Fatal(err)
	}
	st, err := gw.store.UpdateStudy(ctx, studyUID, func(s *store.Study) error { s.State = store.StateQueued; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.gw.deliverDOPU(ctx, st, 2); err != nil {
		t.Fatalf("retry after a lost reply: %v", err)
	}
	if p, _ = gw.store.Pickup(ctx, reg.ID); p.State != PickupMailed || len(p.AnswerSealed) != 0 {
		t.Fatalf("registration after the retry: %s, answer kept %v", p.State, len(p.AnswerSealed) != 0)
	}

	// A registration still "creating" under a code the platform never
	// allocated: CreateConnectPackage answers INVALID_IDENTITY_CODE too,
	// but no package exists, so the delivery must fail, not finish.
	bogus, err := gw.store.CreatePickup(ctx, store.Pickup{PatientID: "PAT-L", Email: "l@example.org", FriendlyName: "L",
		Question: "Q?", AnswerSealed: sealed, IdentityCode: "BCDF-GHJK-LMNP-QRST-VWXZ", StudyUID: studyUID, State: PickupCreating})
	if err != nil {
		t.Fatal(err)
	}
	st.PickupID = bogus.ID
	if err := gw.gw.deliverDOPU(ctx, st, 3); err == nil {
		t.Fatal("a refused package under an unknown code was taken as created")
	}
	if p, _ = gw.store.Pickup(ctx, bogus.ID); p.State != PickupCreating {
		t.Fatalf("registration with no package moved to %s", p.State)
	}
}

// hookPlatform is the real platform client with a hook that runs before
// each package is created.
type hookPlatform struct {
	*client.Client
	beforePackage func(ctx context.Context)
}

func (p *hookPlatform) CreateConnectPackage(ctx context.Context, cp client.ConnectPackage) (string, error) {
	p.beforePackage(ctx)
	return p.Client.CreateConnectPackage(ctx, cp)
}

// TestDOPULateInstance sends an instance of a study while its package is
// being made: the instance is not in the package, so it must not be taken
// for delivered; the study goes back to receiving for it and then waits
// for a pick-up registration of its own.
func TestDOPULateInstance(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, dir)
	key, err := keyfile.LoadOrCreate(filepath.Join(dir, "gateway.key"))
	if err != nil {
		t.Fatal(err)
	}
	packaging, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hp := &hookPlatform{Client: pf.client, beforePackage: func(ctx context.Context) {
		once.Do(func() {
			close(packaging)
			select {
			case <-proceed:
			case <-ctx.Done():
			}
		})
	}}
	gw := startGateway(t, dir, hp, Config{Rules: []route.Rule{{Action: route.ActionDOPU}}, Sealer: key, PublicURL: pf.url})
	reg, err := gw.gw.RegisterPickup(ctx, PickupRequest{PatientID: "PAT-LATE", Email: "l@example.org", FriendlyName: "L", Question: "Q?", Answer: "answer-1"})
	if err != nil {
		t.Fatal(err)
	}
	studyUID, files := writeStudy(t, dir, "PAT-LATE")
	late, err := ctstudy.WriteSeries(filepath.Join(dir, "late"), ctstudy.Options{Instances: 1, Rows: 32, Columns: 32,
		PatientID: "PAT-LATE", StudyInstanceUID: studyUID, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	storescu(t, gw.addr, files...)
	select {
	case <-packaging:
	case <-time.After(60 * time.Second):
		t.Fatal("the study was never packaged")
	}
	storescu(t, gw.addr, late.Files...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err := gw.store.Study(ctx, studyUID); err == nil && st.Instances == len(files)+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late instance was not indexed")
		}
	}
	close(proceed)
	st := waitState(t, gw.store, studyUID, 60*time.Second, store.StateWaitingPickup, store.StateDelivered, store.StateFailed)
	if st.State != store.StateWaitingPickup || st.Delivered != len(files) || st.PackageCode != reg.IdentityCode {
		t.Fatalf("study after a package made without its late instance: %+v", st)
	}
	if in, err := gw.store.Instance(ctx, sopOf(t, late.Files[0])); err != nil || in.Delivered {
		t.Fatalf("late instance: delivered %v, %v", in.Delivered, err)
	}
}
