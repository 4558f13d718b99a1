package dimse

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/pdu"
	"dicomgate/dimse/spool"
	"dicomgate/dimse/ul"
)

const (
	seedClass    = "1.2.840.10008.5.1.4.1.1.7"
	seedInstance = "2.25.1234567890"
)

type testServer struct {
	addr  string
	spool *spool.Spool
	srv   *Server
	log   *logRecorder // what srv logs, unless configure set another Logger
}

// startServer runs a Server on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, configure func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, configure)
}

// serveOn runs a Server, storing into its own spool, on ln until the test
// ends, then checks that Serve returned without error.
func serveOn(t *testing.T, ln net.Listener, configure func(*Server)) *testServer {
	t.Helper()
	sp, err := spool.Open(t.TempDir(), ImplementationClassUID, ImplementationVersionName)
	if err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{}
	srv := &Server{AETitle: "DICOMGATE", Handler: SpoolHandler(sp), Logger: slog.New(rec),
		UL: ul.Config{ARTIMTimeout: 500 * time.Millisecond, IdleTimeout: 5 * time.Second}}
	if configure != nil {
		configure(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{addr: ln.Addr().String(), spool: sp, srv: srv, log: rec}
}

// logRecorder is a slog.Handler that keeps the messages logged.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

var _ slog.Handler = (*logRecorder)(nil)

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// waitLogged waits until msg has been logged n times in all: the server logs
// after it has answered the peer, so an instant after the peer gives up.
func (r *logRecorder) waitLogged(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.count(msg) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times, want %d", msg, r.count(msg), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seedDataSet(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("dataset", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dial(t *testing.T, addr string, cfg ClientConfig, props ...ContextProposal) *Client {
	t.Helper()
	if cfg.CalledAETitle == "" {
		cfg.CalledAETitle = "DICOMGATE"
	}
	if len(props) == 0 {
		props = []ContextProposal{{AbstractSyntax: VerificationSOPClass, TransferSyntaxes: []string{dataset.ImplicitVRLittleEndian}}}
	}
	c, err := Dial(context.Background(), addr, cfg, props)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// spoolFiles lists the files of the spool, temporaries included.
func spoolFiles(t *testing.T, ts *testServer) (instances, temporaries []string) {
	t.Helper()
	instances, _ = filepath.Glob(filepath.Join(ts.spool.Dir(), "*"))
	temporaries, _ = filepath.Glob(filepath.Join(filepath.Dir(ts.spool.Dir()), "tmp", "*"))
	return
}

// waitNoTemporaries waits for the server to clean up after a failed
// transfer, then checks nothing was stored.
func waitNothingStored(t *testing.T, ts *testServer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		inst, tmp := spoolFiles(t, ts)
		if len(inst) == 0 && len(tmp) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %v %v", inst, tmp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func echoOK(t *testing.T, ts *testServer) {
	t.Helper()
	c := dial(t, ts.addr, ClientConfig{})
	if err := c.Echo(context.Background()); err != nil {
		t.Fatalf("echo after the test: %v", err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestStoreEveryEncoding(t *testing.T) {
	ts := startServer(t, nil)
	seeds := map[string]string{
		"explicit-le-undefined-seq.dset": dataset.ExplicitVRLittleEndian,
		"implicit-le.dset":               dataset.ImplicitVRLittleEndian,
		"explicit-be.dset":               dataset.ExplicitVRBigEndian,
		"deflated.dset":                  dataset.DeflatedExplicitVRLittleEndian,
		"encapsulated.dset":              dataset.RLELossless,
	}
	for name, tsUID := range seeds {
		t.Run(name, func(t *testing.T) {
			ds := seedDataSet(t, name)
			c := dial(t, ts.addr, ClientConfig{UL: ul.Config{MaxPDULength: 4096}}, ContextProposal{AbstractSyntax: seedClass, TransferSyntaxes: []string{tsUID}})
			defer func() { _ = c.Release() }()
			if !c.Accepted(seedClass, tsUID) {
				t.Fatalf("%s not accepted as is", tsUID)
			}
			if err := c.Store(context.Background(), seedClass, seedInstance, tsUID, bytes.NewReader(ds), int64(len(ds))); err != nil {
				t.Fatal(err)
			}
			got := part10DataSet(t, ts.spool.PathOf(seedInstance))
			if !bytes.Equal(got, ds) {
				t.Fatal("stored data set differs")
			}
			if err := os.Remove(ts.spool.PathOf(seedInstance)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStoreStatuses(t *testing.T) {
	ds := seedDataSet(t, "explicit-le-undefined-seq.dset")
	cases := []struct {
		name     string
		instance string
		data     []byte
		minFree  int64
		want     Status
	}{
		{"success", seedInstance, ds, 0, StatusSuccess},
		{"duplicate acknowledged", seedInstance, ds, 0, StatusSuccess},
		{"instance contradicts command", "2.25.1", ds, 0, StatusDataSetMismatch},
		{"unparseable", "2.25.2", ds[:len(ds)-5], 0, StatusCannotUnderstand},
		{"disk full", "2.25.3", ds, 1 << 62, StatusOutOfResources},
	}
	ts := startServer(t, nil)
	c := dial(t, ts.addr, ClientConfig{}, ContextProposal{AbstractSyntax: seedClass, TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian}})
	defer func() { _ = c.Release() }()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts.spool.MinFree = tc.minFree
			defer func() { ts.spool.MinFree = 0 }()
			err := c.Store(context.Background(), seedClass, tc.instance, dataset.ExplicitVRLittleEndian, bytes.NewReader(tc.data), int64(len(tc.data)))
			got, _ := StatusOf(err)
			if got != tc.want {
				t.Fatalf("status %s (%v), want %s", got, err, tc.want)
			}
			var se *StatusError
			if tc.want == StatusCannotUnderstand && (!errors.As(err, &se) || se.Comment == "") {
				t.Fatalf("C000 without an error comment: %v", err)
			}
		})
	}
	inst, tmp := spoolFiles(t, ts)
	if len(inst) != 1 || len(tmp) != 0 {
		t.Fatalf("spool holds %v %v", inst, tmp)
	}
}

func TestNegotiation(t *testing.T) {
	const private = "1.3.6.1.4.1.99999.1.1"
	for _, unknown := range []bool{false, true} {
		ts := startServer(t, func(s *Server) { s.AcceptUnknownSOPClasses = unknown })
		props := []ContextProposal{
			{AbstractSyntax: "1.2.840.10008.5.1.4.1.1.2", TransferSyntaxes: []string{dataset.ImplicitVRLittleEndian, dataset.ExplicitVRLittleEndian}},
			{AbstractSyntax: "1.2.840.10008.5.1.4.1.1.4", TransferSyntaxes: []string{dataset.JPEG2000Lossless}},
			{AbstractSyntax: "1.2.840.10008.5.1.4.1.1.7", TransferSyntaxes: []string{"1.2.3.4.5.6"}},
			{AbstractSyntax: "1.2.840.10008.5.1.4.1.2.1.1", TransferSyntaxes: []string{dataset.ImplicitVRLittleEndian}},
			{AbstractSyntax: private, TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian}},
			{AbstractSyntax: "1.2.840.10008.5.1.4.1.1.2", TransferSyntaxes: []string{dataset.HTJ2K, dataset.DeflatedExplicitVRLittleEndian}},
		}
		c := dial(t, ts.addr, ClientConfig{}, props...)
		ac := c.Association().Accepted()
		results := map[byte]pdu.PresentationContextAC{}
		for _, pc := range ac.PresentationContexts {
			results[pc.ID] = pc
		}
		check := func(id byte, res pdu.ContextResult, tsUID string) {
			t.Helper()
			got := results[id]
			if got.Result != res || res == pdu.ContextAcceptance && got.TransferSyntax != tsUID {
				t.Errorf("unknown=%v context %d: %+v, want result %d %s", unknown, id, got, res, tsUID)
			}
		}
		check(1, pdu.ContextAcceptance, dataset.ExplicitVRLittleEndian) // preference wins over proposal order
		check(3, pdu.ContextAcceptance, dataset.JPEG2000Lossless)       // compressed kept as is
		check(5, pdu.ContextTransferSyntaxesNotSupported, "")
		check(7, pdu.ContextAbstractSyntaxNotSupported, "") // Q/R FIND is not storage
		if unknown {
			check(9, pdu.ContextAcceptance, dataset.ExplicitVRLittleEndian)
		} else {
			check(9, pdu.ContextAbstractSyntaxNotSupported, "")
		}
		check(11, pdu.ContextAcceptance, dataset.HTJ2K)
		_ = c.Release()
	}
}

func TestRejections(t *testing.T) {
	ts := startServer(t, func(s *Server) {
		s.AllowedCallers = []CallerRule{{AETitle: "MODALITY"}, {AETitle: "PINNED", Host: "10.9.9.9"}, {AETitle: "LOCAL", Host: "127.0.0.1"}}
		s.MaxAssociations = 1
	})
	try := func(calling, called string) error {
		c, err := Dial(context.Background(), ts.addr, ClientConfig{CallingAETitle: calling, CalledAETitle: called},
			[]ContextProposal{{AbstractSyntax: VerificationSOPClass, TransferSyntaxes: []string{dataset.ImplicitVRLittleEndian}}})
		if err == nil {
			_ = c.Release()
		}
		return err
	}
	wantRJ := func(err error, result pdu.RejectResult, source pdu.RejectSource, reason byte) {
		t.Helper()
		var rj *ul.RejectError
		if !errors.As(err, &rj) || rj.RJ.Result != result || rj.RJ.Source != source || rj.RJ.Reason != reason {
			t.Fatalf("got %v, want A-ASSOCIATE-RJ %d/%d/%d", err, result, source, reason)
		}
	}
	wantRJ(try("MODALITY", "SOMEONE"), 1, 1, 7)
	wantRJ(try("STRANGER", "DICOMGATE"), 1, 1, 3)
	wantRJ(try("PINNED", "DICOMGATE"), 1, 1, 3) // right AE, wrong address
	// A released association frees its slot once the peer has closed the
	// transport (Sta13 -> Sta1), an instant after the release.
	eventually := func(calling string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			err := try(calling, "DICOMGATE")
			if err == nil {
				return
			}
			var rj *ul.RejectError
			if !errors.As(err, &rj) || rj.RJ.Result != pdu.RejectedTransient || time.Now().After(deadline) {
				t.Fatalf("%s: %v", calling, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually("LOCAL")
	eventually("MODALITY")
	// Hold the only slot: the next association is rejected transiently.
	var held *Client
	for deadline := time.Now().Add(3 * time.Second); held == nil; {
		c, err := Dial(context.Background(), ts.addr, ClientConfig{CallingAETitle: "MODALITY", CalledAETitle: "DICOMGATE"},
			[]ContextProposal{{AbstractSyntax: VerificationSOPClass, TransferSyntaxes: []string{dataset.ImplicitVRLittleEndian}}})
		if err == nil {
			held = c
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	wantRJ(try("MODALITY", "DICOMGATE"), 2, 3, 2)
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	eventually("MODALITY")
}

// rawConn opens a TCP connection for hand-made PDUs.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntilClosed returns what the server sends before closing.
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server did not close the connection")
	}
	return b
}

func pduHeader(typ byte, n uint32) []byte {
	b := []byte{typ, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], n)
	return b
}

func TestHostileInput(t *testing.T) {
	ts := startServer(t, nil)
	rq, err := pdu.Encode(&pdu.AssociateRQ{ProtocolVersion: 1, CalledAETitle: "DICOMGATE", CallingAETitle: "EVIL",
		ApplicationContext:   pdu.ApplicationContextName,
		PresentationContexts: []pdu.PresentationContextRQ{{ID: 1, AbstractSyntax: seedClass, TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian}}},
		UserInformation:      pdu.UserInformation{MaxLength: 16384}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		send       [][]byte
		closeWrite bool // the peer closes its side after sending
		wantAbort  bool
	}{
		{"unknown PDU type", [][]byte{append(pduHeader(0x55, 4), 0, 0, 0, 0)}, false, true},
		{"length claiming gigabytes", [][]byte{pduHeader(0x01, 0xFFFFFFF0)}, false, true},
		{"P-DATA claiming gigabytes after association", [][]byte{rq, pduHeader(0x04, 0xF0000000)}, false, true},
		{"truncated PDU", [][]byte{rq[:40]}, true, false},
		{"dropped mid-PDV", [][]byte{rq, storeCommandPDU(t), pduHeader(0x04, 8192+6), {0, 0, 0x20, 0x02, 1, 0}, make([]byte, 1000)}, true, false},
		{"malformed associate RQ", [][]byte{append(pduHeader(0x01, 70), make([]byte, 70)...)}, false, true},
		{"silent connection", nil, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			conn := rawConn(t, ts.addr)
			for _, b := range c.send {
				if _, err := conn.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			if c.closeWrite {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			got := readUntilClosed(t, conn)
			if c.wantAbort && !bytes.Contains(got, []byte{0x07, 0, 0, 0, 0, 4}) {
				t.Fatalf("no A-ABORT in %x", got)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Fatalf("server allocated %d MiB for a hostile PDU", grew>>20)
			}
			waitNothingStored(t, ts)
			echoOK(t, ts)
		})
	}
}

// storeCommandPDU is a P-DATA-TF PDU with a whole C-STORE-RQ command.
func storeCommandPDU(t *testing.T) []byte {
	t.Helper()
	cmd := (&Command{AffectedSOPClassUID: seedClass, AffectedSOPInstanceUID: seedInstance, CommandField: CommandCStoreRQ, MessageID: 1, HasDataSet: true}).Encode()
	b, err := pdu.Encode(&pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: 1, Command: true, Last: true, Data: cmd}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failAfter yields n bytes of r, then fails.
type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("sender gave up")
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestTransferCutMidDataSet(t *testing.T) {
	big := make([]byte, 1<<20) // one OB element of 1 MiB
	ds := append([]byte{0x09, 0x00, 0x10, 0x10, 'O', 'B', 0, 0}, binary.LittleEndian.AppendUint32(nil, uint32(len(big)))...)
	ds = append(ds, big...)
	for _, how := range []string{"dropped", "aborted"} {
		t.Run(how, func(t *testing.T) {
			started := make(chan struct{})
			ts := startServer(t, func(s *Server) {
				inner := s.Handler
				s.Handler = HandlerFunc(func(ctx context.Context, req *StoreRequest, r io.Reader) error {
					close(started)
					return inner.Store(ctx, req, r)
				})
			})
			c := dial(t, ts.addr, ClientConfig{UL: ul.Config{MaxPDULength: 4096}}, ContextProposal{AbstractSyntax: seedClass, TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian}})
			a := c.Association()
			cmd := (&Command{AffectedSOPClassUID: seedClass, AffectedSOPInstanceUID: seedInstance, CommandField: CommandCStoreRQ, MessageID: 1, HasDataSet: true}).Encode()
			err := a.SendMessage(1, cmd, &failAfter{r: bytes.NewReader(ds), n: len(ds) / 2}, int64(len(ds)))
			if err == nil {
				t.Fatal("SendMessage did not fail")
			}
			// Wait until the server is storing it, then cut.
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("the server never started storing")
			}
			if how == "aborted" {
				a.AbortAndClose()
			} else {
				a.Close()
			}
			waitNothingStored(t, ts)
			echoOK(t, ts)
		})
	}
}

func TestServerReleaseAndShutdown(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), ImplementationClassUID, ImplementationVersionName)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{AETitle: "DICOMGATE", Handler: SpoolHandler(sp)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c := dial(t, ln.Addr().String(), ClientConfig{})
	if err := c.Echo(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Shutdown aborts open associations and returns.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancellation")
	}
	if err := c.Echo(context.Background()); err == nil {
		t.Fatal("association survived shutdown")
	}
}

// tlsServer is a test server behind DICOM TLS that requires client
// certificates signed by its CA.
type tlsServer struct {
	*testServer
	sawTLS atomic.Bool // the last C-STORE's association ran over TLS
}

// startTLSServer starts a tlsServer whose certificate (for 127.0.0.1) and
// trusted client CA is ca.
func startTLSServer(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) *tlsServer {
	t.Helper()
	serverCert, serverKey := newCert(t, "127.0.0.1", ca, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	ts := &tlsServer{}
	ts.testServer = serveOn(t, ln, func(s *Server) {
		// The default timeouts: the ARTIM timeout also bounds the TLS
		// handshake, which a loaded machine may take a while to finish.
		s.UL = ul.Config{}
		store := s.Handler
		s.Handler = HandlerFunc(func(ctx context.Context, req *StoreRequest, r io.Reader) error {
			ts.sawTLS.Store(req.Association.TLS)
			return store.Store(ctx, req, r)
		})
	})
	return ts
}

// handshakeFailed is what the server logs when a TLS handshake fails.
const handshakeFailed = "dicom tls handshake failed"

// TestTLS runs the server behind DICOM TLS requiring client certificates.
func TestTLS(t *testing.T) {
	ca, caKey := newCert(t, "test CA", nil, nil)
	clientCert, clientKey := newCert(t, "MODALITY", ca, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ts := startTLSServer(t, ca, caKey)
	ctx := context.Background()
	ds := seedDataSet(t, "explicit-le-undefined-seq.dset")
	props := []ContextProposal{{AbstractSyntax: seedClass, TransferSyntaxes: []string{dataset.ExplicitVRLittleEndian}}}
	good := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1",
		Certificates: []tls.Certificate{{Certificate: [][]byte{clientCert.Raw}, PrivateKey: clientKey}}}
	c, err := Dial(ctx, ts.addr, ClientConfig{CalledAETitle: "DICOMGATE", TLS: good}, props)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Store(ctx, seedClass, seedInstance, dataset.ExplicitVRLittleEndian, bytes.NewReader(ds), int64(len(ds))); err != nil {
		t.Fatal(err)
	}
	_ = c.Release()
	if !ts.sawTLS.Load() {
		t.Error("handler not told the association runs over TLS")
	}
	// Without a client certificate the handshake fails.
	if _, err := Dial(ctx, ts.addr, ClientConfig{CalledAETitle: "DICOMGATE", TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}, props); err == nil {
		t.Fatal("association without client certificate succeeded")
	}
	ts.log.waitLogged(t, handshakeFailed, 1)
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	} else if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestClientChecksMessageID: a response to another message ID is a
// protocol violation; the SCU aborts instead of taking it as an answer.
func TestClientChecksMessageID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		srv := &Server{AETitle: "DICOMGATE"}
		a, err := ul.Accept(conn, ul.Config{ARTIMTimeout: time.Second}, func(rq *pdu.AssociateRQ) (*pdu.AssociateAC, *pdu.AssociateRJ) {
			ac, _ := srv.negotiate(rq)
			return ac, nil
		})
		if err != nil {
			return
		}
		defer a.Close()
		cmd, pcid, err := readCommand(a)
		if err != nil {
			return
		}
		rsp := &Command{AffectedSOPClassUID: cmd.AffectedSOPClassUID, CommandField: CommandCEchoRSP, MessageIDBeingRespondedTo: cmd.MessageID + 1}
		_ = a.SendMessage(pcid, rsp.Encode(), nil, 0)
		_, _ = a.ReadPDV() // the abort
	}()
	c := dial(t, ln.Addr().String(), ClientConfig{})
	if err := c.Echo(context.Background()); !errors.Is(err, errProtocol) {
		t.Fatalf("got %v, want a protocol violation", err)
	}
	if st := c.Association().State(); st != ul.Sta1 {
		t.Fatalf("association left in %s", st)
	}
}
