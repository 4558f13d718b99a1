package ul

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"dicomgate/dimse/pdu"
)

const verification = "1.2.840.10008.1.1"

type recorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *recorder) trace(from State, ev Event, act Action, to State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, fmt.Sprintf("%s %s %s %s", from, ev, act, to))
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steps)
}

func request(maxPDU uint32) *pdu.AssociateRQ {
	return &pdu.AssociateRQ{ProtocolVersion: 1, CalledAETitle: "SCP", CallingAETitle: "SCU", ApplicationContext: pdu.ApplicationContextName,
		PresentationContexts: []pdu.PresentationContextRQ{{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{"1.2.840.10008.1.2"}}},
		UserInformation:      pdu.UserInformation{MaxLength: maxPDU, ImplementationClassUID: "1.2.3"}}
}

func accept(rq *pdu.AssociateRQ) (*pdu.AssociateAC, *pdu.AssociateRJ) {
	return &pdu.AssociateAC{ProtocolVersion: 1, CalledAETitle: rq.CalledAETitle, CallingAETitle: rq.CallingAETitle,
		ApplicationContext:   pdu.ApplicationContextName,
		PresentationContexts: []pdu.PresentationContextAC{{ID: 1, TransferSyntax: "1.2.840.10008.1.2"}},
		UserInformation:      pdu.UserInformation{MaxLength: 8192, ImplementationClassUID: "1.2.3"}}, nil
}

// pair establishes an association over loopback TCP.
func pair(t *testing.T, scuCfg, scpCfg Config, rqMax uint32) (scu, scp *Association, scuRec, scpRec *recorder) {
	t.Helper()
	scuRec, scpRec = &recorder{}, &recorder{}
	scuCfg.Trace, scpCfg.Trace = scuRec.trace, scpRec.trace
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		scp, err = Accept(c, scpCfg, accept)
		done <- err
	}()
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	scu, err = Request(context.Background(), dial, request(rqMax), scuCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scu.Close(); scp.Close() })
	return scu, scp, scuRec, scpRec
}

func TestEstablishAndFragment(t *testing.T) {
	scu, scp, scuRec, scpRec := pair(t, Config{}, Config{}, 4096)
	if got := scu.State(); got != Sta6 {
		t.Fatalf("requestor in %s", got)
	}
	wantSCU := []string{"Sta1 Evt1 AE-1 Sta4", "Sta4 Evt2 AE-2 Sta5", "Sta5 Evt3 AE-3 Sta6"}
	wantSCP := []string{"Sta1 Evt5 AE-5 Sta2", "Sta2 Evt6 AE-6 Sta3", "Sta3 Evt7 AE-7 Sta6"}
	if !slices.Equal(scuRec.get(), wantSCU) || !slices.Equal(scpRec.get(), wantSCP) {
		t.Fatalf("transitions:\nSCU %v\nSCP %v", scuRec.get(), scpRec.get())
	}
	// The acceptor sends 20 kB to a requestor announcing 4096: every PDU
	// must fit (the requestor's reader rejects longer ones).
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1280)
	cmd := []byte("command-bytes")
	errc := make(chan error, 1)
	go func() { errc <- scp.SendMessage(1, cmd, bytes.NewReader(payload), int64(len(payload))) }()
	var gotCmd, gotData []byte
	pdvs := 0
	for {
		v, err := scu.ReadPDV()
		if err != nil {
			t.Fatal(err)
		}
		pdvs++
		if v.Command {
			gotCmd = append(gotCmd, v.Data...)
			continue
		}
		gotData = append(gotData, v.Data...)
		if v.Last {
			break
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotCmd, cmd) || !bytes.Equal(gotData, payload) {
		t.Fatal("message corrupted")
	}
	if pdvs < len(payload)/4090+1 {
		t.Fatalf("only %d PDVs for %d bytes with 4096-byte PDUs", pdvs, len(payload))
	}
	// And the other way, honouring the acceptor's 8192.
	go func() { errc <- scu.SendMessage(1, cmd, bytes.NewReader(payload), int64(len(payload))) }()
	n := 0
	for {
		v, err := scp.ReadPDV()
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Data) > 8192-6 {
			t.Fatalf("PDV of %d bytes exceeds the acceptor's maximum", len(v.Data))
		}
		if !v.Command {
			n += len(v.Data)
			if v.Last {
				break
			}
		}
	}
	if n != len(payload) {
		t.Fatalf("got %d bytes", n)
	}
	<-errc
}

func TestReleaseByRequestor(t *testing.T) {
	scu, scp, scuRec, scpRec := pair(t, Config{}, Config{}, 0)
	errc := make(chan error, 1)
	go func() { errc <- scu.Release() }()
	if _, err := scp.ReadPDV(); !errors.Is(err, ErrReleaseRequested) {
		t.Fatalf("acceptor got %v", err)
	}
	if err := scp.RespondRelease(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkTail(t, scuRec, "Sta6 Evt11 AR-1 Sta7", "Sta7 Evt13 AR-3 Sta1")
	checkTail(t, scpRec, "Sta6 Evt12 AR-2 Sta8", "Sta8 Evt14 AR-4 Sta13", "Sta13 Evt17 AR-5 Sta1")
}

func TestReleaseByAcceptor(t *testing.T) {
	scu, scp, scuRec, scpRec := pair(t, Config{}, Config{}, 0)
	errc := make(chan error, 1)
	go func() { errc <- scp.Release() }()
	if _, err := scu.ReadPDV(); !errors.Is(err, ErrReleaseRequested) {
		t.Fatalf("requestor got %v", err)
	}
	if err := scu.RespondRelease(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkTail(t, scpRec, "Sta6 Evt11 AR-1 Sta7", "Sta7 Evt13 AR-3 Sta1")
	checkTail(t, scuRec, "Sta6 Evt12 AR-2 Sta8", "Sta8 Evt14 AR-4 Sta13", "Sta13 Evt17 AR-5 Sta1")
}

func TestReleaseCollision(t *testing.T) {
	scu, scp, scuRec, scpRec := pair(t, Config{}, Config{}, 0)
	// Both send A-RELEASE-RQ before either reads: a collision on both sides.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, a := range []*Association{scu, scp} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = a.Release() }()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("release: %v", errs)
	}
	checkTail(t, scuRec, "Sta6 Evt11 AR-1 Sta7", "Sta7 Evt12 AR-8 Sta9", "Sta9 Evt14 AR-9 Sta11", "Sta11 Evt13 AR-3 Sta1")
	checkTail(t, scpRec, "Sta6 Evt11 AR-1 Sta7", "Sta7 Evt12 AR-8 Sta10", "Sta10 Evt13 AR-10 Sta12", "Sta12 Evt14 AR-4 Sta13", "Sta13 Evt17 AR-5 Sta1")
}

func TestAbortEitherSide(t *testing.T) {
	for _, side := range []string{"requestor", "acceptor"} {
		t.Run(side, func(t *testing.T) {
			scu, scp, _, _ := pair(t, Config{ARTIMTimeout: time.Second}, Config{ARTIMTimeout: time.Second}, 0)
			from, to := scu, scp
			if side == "acceptor" {
				from, to = scp, scu
			}
			go func() { _ = from.Abort() }()
			_, err := to.ReadPDV()
			var ae *AbortError
			if !errors.As(err, &ae) || ae.Local || ae.Source != pdu.AbortServiceUser {
				t.Fatalf("got %v, want a peer A-ABORT", err)
			}
			if to.State() != Sta1 {
				t.Fatalf("aborted side in %s", to.State())
			}
		})
	}
}

func TestARTIMExpiresOnSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	start := time.Now()
	_, err = Accept(sc, Config{ARTIMTimeout: 200 * time.Millisecond, Trace: rec.trace}, accept)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Accept on a silent peer: %v after %v", err, time.Since(start))
	}
	if !slices.Contains(rec.get(), "Sta2 Evt18 AA-2 Sta1") {
		t.Fatalf("no ARTIM expiry in %v", rec.get())
	}
	if n, _ := c.Read(make([]byte, 1)); n != 0 {
		t.Fatal("connection not closed")
	}
}

func TestIdleTimeoutAborts(t *testing.T) {
	scu, scp, _, scpRec := pair(t, Config{}, Config{IdleTimeout: 150 * time.Millisecond, ARTIMTimeout: 300 * time.Millisecond}, 0)
	go func() {
		_, err := scu.ReadPDV() // receives the A-ABORT
		var ae *AbortError
		if !errors.As(err, &ae) {
			t.Errorf("requestor got %v", err)
		}
	}()
	if _, err := scp.ReadPDV(); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("got %v", err)
	}
	if !slices.Contains(scpRec.get(), "Sta6 Evt15 AA-1 Sta13") {
		t.Fatalf("transitions %v", scpRec.get())
	}
}

func TestInvalidPDUAborts(t *testing.T) {
	for _, bad := range [][]byte{
		{0x42, 0, 0, 0, 0, 4, 0, 0, 0, 0},       // unknown type
		{0x04, 0, 0xFF, 0xFF, 0xFF, 0xF0},       // 4 GB P-DATA
		{0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 2, 0}, // PDV on even context
		{0x02, 0, 0, 0, 0, 4, 0, 0, 0, 0},       // A-ASSOCIATE-AC in Sta6
	} {
		t.Run(fmt.Sprintf("%x", bad[:2]), func(t *testing.T) {
			scu, scp, _, _ := pair(t, Config{}, Config{ARTIMTimeout: 500 * time.Millisecond}, 0)
			if _, err := scu.conn.Write(bad); err != nil {
				t.Fatal(err)
			}
			_, err := scp.ReadPDV()
			var ae *AbortError
			if !errors.As(err, &ae) || !ae.Local {
				t.Fatalf("got %v, want a local provider abort", err)
			}
			// The peer sees an A-ABORT PDU from the service provider.
			p, err := pdu.NewReader(scu.conn).Read()
			if err != nil {
				t.Fatal(err)
			}
			if ab, ok := p.(*pdu.Abort); !ok || ab.Source != pdu.AbortServiceProvider {
				t.Fatalf("got %v", p)
			}
		})
	}
}

func TestRejection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = Accept(c, Config{}, func(*pdu.AssociateRQ) (*pdu.AssociateAC, *pdu.AssociateRJ) {
			return nil, &pdu.AssociateRJ{Result: pdu.RejectedPermanent, Source: pdu.SourceServiceUser, Reason: pdu.ReasonCalledAETitleNotRecognized}
		})
	}()
	dial := func(ctx context.Context) (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }
	rec := &recorder{}
	_, err = Request(context.Background(), dial, request(0), Config{Trace: rec.trace})
	var rj *RejectError
	if !errors.As(err, &rj) || rj.RJ.Reason != 7 {
		t.Fatalf("got %v", err)
	}
	checkTail(t, rec, "Sta5 Evt4 AE-4 Sta1")
}

// TestStateTableComplete checks that every PDU event has an action in
// every state where a transport connection exists (PS3.8 table 9-10 leaves
// no such cell empty).
func TestStateTableComplete(t *testing.T) {
	for _, ev := range []Event{Evt3, Evt4, Evt6, Evt10, Evt12, Evt13, Evt16, Evt17, Evt19} {
		for s := Sta2; s <= Sta13; s++ {
			if s == Sta4 && ev != Evt17 {
				continue
			}
			if lookup(s, ev) == noAction {
				t.Errorf("no action for %s in %s", ev, s)
			}
		}
	}
}

func checkTail(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := r.get()
		if len(got) >= len(want) && slices.Equal(got[len(got)-len(want):], want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transitions end with\n%v\nwant\n%v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
