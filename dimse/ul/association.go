// Package ul implements the DICOM upper layer service of DICOM PS3.8: the
// association state machine of section 9.2 (states Sta1..Sta13, events
// Evt1..Evt19, actions AE-n, DT-n, AR-n and AA-n named as in table 9-10) for
// both the association requestor and the acceptor, the ARTIM timer, an idle
// timeout, P-DATA fragmentation honouring the peer's maximum PDU length,
// A-RELEASE from either side including release collisions, and A-ABORT from
// either side.
//
// An Association is driven synchronously by its user: received PDUs are
// turned into events when the user reads, primitives into events when the
// user sends. Only the ARTIM timer fires on its own goroutine. Every
// transition goes through one place, Association.event, so the state table
// is the only source of truth for what a PDU does in a state.
package ul

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"dicomgate/dimse/pdu"
)

// Defaults of Config.
const (
	DefaultARTIMTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultWriteTimeout   = 2 * time.Minute
	DefaultMaxPDULength   = 256 * 1024
	maxSendPDULengthLimit = 1 << 20
	minSendPDULength      = 64
)

// Config tunes an association. The zero value uses the defaults.
type Config struct {
	// ARTIMTimeout is the association request/reject/release timer of
	// PS3.8 9.1.5: how long an acceptor waits for the A-ASSOCIATE-RQ and
	// either side waits for the peer to close after a release or abort.
	ARTIMTimeout time.Duration
	// IdleTimeout bounds the wait for the next PDU on an established
	// association; when it expires the association is aborted.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the peer.
	WriteTimeout time.Duration
	// MaxPDULength is the maximum P-DATA-TF PDU length this side announces
	// and accepts.
	MaxPDULength uint32
	// Trace, when set, is called for every transition (for logs and tests).
	Trace func(from State, ev Event, act Action, to State)
}

func (c *Config) defaults() {
	if c.ARTIMTimeout <= 0 {
		c.ARTIMTimeout = DefaultARTIMTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxPDULength == 0 {
		c.MaxPDULength = DefaultMaxPDULength
	}
}

// Errors an Association returns.
var (
	// ErrReleaseRequested reports an A-RELEASE indication: the peer asked
	// to release; answer with RespondRelease.
	ErrReleaseRequested = errors.New("ul: peer requested release")
	// ErrClosed reports that the association no longer exists (A-P-ABORT
	// by transport close, or a completed release or abort).
	ErrClosed = errors.New("ul: association closed")
	// ErrIdleTimeout reports that the peer stayed silent longer than the
	// idle timeout; the association has been aborted.
	ErrIdleTimeout = errors.New("ul: idle timeout")
	// ErrState reports a primitive issued in a state that does not allow it.
	ErrState = errors.New("ul: primitive not allowed in this state")
)

// AbortError reports an aborted association: by the peer (an A-ABORT PDU,
// Local false) or by this side's service provider after a protocol error
// (Local true).
type AbortError struct {
	Source pdu.AbortSource
	Reason pdu.AbortReason
	Local  bool
	Err    error // the protocol error behind a local abort
}

// Error implements error.
func (e *AbortError) Error() string {
	who := "peer"
	if e.Local {
		who = "local provider"
	}
	if e.Err != nil {
		return fmt.Sprintf("ul: association aborted by %s (source %d reason %d): %v", who, e.Source, e.Reason, e.Err)
	}
	return fmt.Sprintf("ul: association aborted by %s (source %d reason %d)", who, e.Source, e.Reason)
}

// Unwrap returns the protocol error behind a local abort.
func (e *AbortError) Unwrap() error { return e.Err }

// RejectError reports an A-ASSOCIATE-RJ received by a requestor.
type RejectError struct{ RJ pdu.AssociateRJ }

// Error implements error.
func (e *RejectError) Error() string { return "ul: association rejected: " + e.RJ.String() }

// Association is one DICOM association over one transport connection.
// ReadPDV and SendMessage may not be called concurrently with themselves;
// Abort may be called from any goroutine.
type Association struct {
	conn      net.Conn
	cfg       Config
	requestor bool
	rd        *pdu.Reader

	mu      sync.Mutex
	wmu     sync.Mutex // serialises whole messages
	state   State
	artim   *time.Timer
	closed  bool
	peerMax uint32 // peer's maximum P-DATA-TF length, 0 unlimited

	rq *pdu.AssociateRQ
	ac *pdu.AssociateAC

	pending []pdu.PDV
	wbuf    []byte
}

// input is what accompanies an event: a received PDU, or the bytes of a PDU
// to send, or the error behind an invalid PDU.
type input struct {
	pdu  pdu.PDU
	out  []byte
	rj   *pdu.AssociateRJ
	err  error
	diag pdu.AbortReason
}

func newAssociation(conn net.Conn, cfg Config, requestor bool) *Association {
	cfg.defaults()
	rd := pdu.NewReader(conn)
	rd.MaxPDataLength = cfg.MaxPDULength
	return &Association{conn: conn, cfg: cfg, requestor: requestor, rd: rd, state: Sta1}
}

// State returns the current state.
func (a *Association) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Request returns the A-ASSOCIATE-RQ of the association.
func (a *Association) Request() *pdu.AssociateRQ { return a.rq }

// Accepted returns the A-ASSOCIATE-AC of the association.
func (a *Association) Accepted() *pdu.AssociateAC { return a.ac }

// event runs one transition of the state table. It returns the action taken
// and, for indications that end or fail the association, an error.
func (a *Association) event(ev Event, in input) (Action, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	from := a.state
	act := lookup(from, ev)
	if act == noAction {
		if ev == Evt17 || ev == Evt18 {
			return noAction, ErrClosed // already idle: nothing to do
		}
		return noAction, fmt.Errorf("%w: %s in %s", ErrState, ev, from)
	}
	err := a.do(act, ev, in)
	if a.cfg.Trace != nil {
		a.cfg.Trace(from, ev, act, a.state)
	}
	return act, err
}

// do performs act; a.mu is held.
func (a *Association) do(act Action, ev Event, in input) error {
	switch act {
	case AE1:
		a.state = Sta4
	case AE2:
		a.state = Sta5
		return a.sendPDU(a.rq)
	case AE3:
		a.ac = in.pdu.(*pdu.AssociateAC)
		a.peerMax = a.ac.UserInformation.MaxLength
		a.state = Sta6
	case AE4:
		a.closeTransport()
		a.state = Sta1
		return &RejectError{RJ: *in.pdu.(*pdu.AssociateRJ)}
	case AE5:
		a.startARTIM()
		a.state = Sta2
	case AE6:
		a.stopARTIM()
		a.rq = in.pdu.(*pdu.AssociateRQ)
		if a.rq.ProtocolVersion&1 == 0 {
			// Not acceptable by the service provider: PS3.8 9.3.2 bit 0
			// is protocol version 1.
			a.state = Sta13
			a.startARTIM()
			err := a.sendPDU(&pdu.AssociateRJ{Result: pdu.RejectedPermanent, Source: pdu.SourceServiceProviderACSE, Reason: pdu.ReasonProtocolVersionNotSupported})
			return errors.Join(errors.New("ul: protocol version not supported"), err)
		}
		a.state = Sta3
	case AE7:
		a.ac = in.pdu.(*pdu.AssociateAC)
		a.peerMax = a.rq.UserInformation.MaxLength
		a.state = Sta6
		return a.sendPDU(a.ac)
	case AE8:
		a.state = Sta13
		a.startARTIM()
		return a.sendPDU(in.rj)
	case DT1:
		a.state = Sta6
		return a.writeRaw(in.out)
	case AR7:
		a.state = Sta8
		return a.writeRaw(in.out)
	case DT2:
		a.state = Sta6
	case AR6:
		a.state = Sta7
	case AR1:
		a.state = Sta7
		return a.sendPDU(&pdu.ReleaseRQ{})
	case AR2:
		a.state = Sta8
	case AR3:
		a.closeTransport()
		a.state = Sta1
	case AR4:
		a.state = Sta13
		a.startARTIM()
		return a.sendPDU(&pdu.ReleaseRP{})
	case AR5:
		a.stopARTIM()
		a.closeTransport()
		a.state = Sta1
	case AR8:
		if a.requestor {
			a.state = Sta9
		} else {
			a.state = Sta10
		}
	case AR9:
		a.state = Sta11
		return a.sendPDU(&pdu.ReleaseRP{})
	case AR10:
		a.state = Sta12
	case AA1:
		a.state = Sta13
		a.startARTIM()
		return a.sendPDU(&pdu.Abort{Source: pdu.AbortServiceUser, Reason: in.diag})
	case AA2:
		a.stopARTIM()
		a.closeTransport()
		a.state = Sta1
	case AA3:
		ab := in.pdu.(*pdu.Abort)
		a.closeTransport()
		a.state = Sta1
		return &AbortError{Source: ab.Source, Reason: ab.Reason}
	case AA4:
		a.stopARTIM()
		a.closeTransport()
		a.state = Sta1
		return ErrClosed
	case AA5:
		a.stopARTIM()
		a.closeTransport()
		a.state = Sta1
	case AA6:
		a.state = Sta13
	case AA7:
		a.state = Sta13
		return a.sendPDU(&pdu.Abort{Source: pdu.AbortServiceProvider, Reason: in.diag})
	case AA8:
		a.state = Sta13
		a.startARTIM()
		// A failed send changes nothing: the A-P-ABORT indication below is
		// what the user needs.
		_ = a.sendPDU(&pdu.Abort{Source: pdu.AbortServiceProvider, Reason: in.diag})
		return &AbortError{Source: pdu.AbortServiceProvider, Reason: in.diag, Local: true, Err: in.err}
	}
	return nil
}

func (a *Association) startARTIM() {
	if a.artim != nil {
		a.artim.Stop()
	}
	a.artim = time.AfterFunc(a.cfg.ARTIMTimeout, func() { _, _ = a.event(Evt18, input{}) })
}

func (a *Association) stopARTIM() {
	if a.artim != nil {
		a.artim.Stop()
		a.artim = nil
	}
}

func (a *Association) closeTransport() {
	if !a.closed && a.conn != nil {
		a.closed = true
		_ = a.conn.Close()
	}
}

func (a *Association) sendPDU(p pdu.PDU) error {
	b, err := pdu.Encode(p)
	if err != nil {
		return err
	}
	return a.writeRaw(b)
}

func (a *Association) writeRaw(b []byte) error {
	if a.closed {
		return ErrClosed
	}
	_ = a.conn.SetWriteDeadline(time.Now().Add(a.cfg.WriteTimeout))
	_, err := a.conn.Write(b)
	return err
}

// Accept runs the acceptor side of association establishment on conn:
// Evt5 (AE-5, ARTIM started), then the A-ASSOCIATE-RQ (Evt6, AE-6). decide
// is the local user: it returns the A-ASSOCIATE-AC to send (Evt7, AE-7) or
// the A-ASSOCIATE-RJ (Evt8, AE-8). On rejection or failure Accept waits, at
// most the ARTIM timeout, for the peer to close and returns an error.
func Accept(conn net.Conn, cfg Config, decide func(*pdu.AssociateRQ) (*pdu.AssociateAC, *pdu.AssociateRJ)) (*Association, error) {
	a := newAssociation(conn, cfg, false)
	if _, err := a.event(Evt5, input{}); err != nil {
		return nil, err
	}
	p, err := a.readPDU()
	if err != nil {
		return nil, a.fail(err)
	}
	rq, ok := p.(*pdu.AssociateRQ)
	if !ok {
		return nil, a.unexpected(p)
	}
	if _, err := a.event(Evt6, input{pdu: rq}); err != nil {
		a.waitClosed()
		return nil, err
	}
	ac, rj := decide(rq)
	if rj != nil {
		err := &RejectError{RJ: *rj}
		if _, werr := a.event(Evt8, input{rj: rj}); werr != nil {
			a.Close()
			return nil, errors.Join(err, werr)
		}
		a.waitClosed()
		return nil, err
	}
	if _, err := a.event(Evt7, input{pdu: ac}); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Request runs the requestor side of association establishment: Evt1
// (AE-1), dial, Evt2 (AE-2: send rq), then the A-ASSOCIATE-AC (Evt3, AE-3)
// or -RJ (Evt4, AE-4, returned as *RejectError).
func Request(ctx context.Context, dial func(context.Context) (net.Conn, error), rq *pdu.AssociateRQ, cfg Config) (*Association, error) {
	a := newAssociation(nil, cfg, true)
	a.rq = rq
	if rq.UserInformation.MaxLength == 0 {
		rq.UserInformation.MaxLength = a.cfg.MaxPDULength
	}
	if _, err := a.event(Evt1, input{}); err != nil {
		return nil, err
	}
	conn, err := dial(ctx)
	if err != nil {
		a.mu.Lock()
		a.state = Sta1 // AA-4 without a transport: the connect failed
		a.mu.Unlock()
		return nil, err
	}
	a.conn = conn
	a.rd = pdu.NewReader(conn)
	a.rd.MaxPDataLength = rq.UserInformation.MaxLength
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := a.event(Evt2, input{}); err != nil {
		a.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(a.cfg.ARTIMTimeout))
	p, err := a.readPDU()
	if err != nil {
		return nil, a.fail(err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	switch v := p.(type) {
	case *pdu.AssociateAC:
		if _, err := a.event(Evt3, input{pdu: v}); err != nil {
			return nil, err
		}
		return a, nil
	case *pdu.AssociateRJ:
		_, err := a.event(Evt4, input{pdu: v})
		return nil, err
	}
	return nil, a.unexpected(p)
}

// readPDU reads the next PDU, with the idle timeout as deadline once the
// association is established.
func (a *Association) readPDU() (pdu.PDU, error) {
	a.mu.Lock()
	st := a.state
	a.mu.Unlock()
	if st == Sta6 || st == Sta7 || st == Sta10 || st == Sta11 {
		_ = a.conn.SetReadDeadline(time.Now().Add(a.cfg.IdleTimeout))
	}
	return a.rd.Read()
}

// fail turns a read error into its event: an invalid PDU is Evt19, a
// timeout on an established association is an abort request (Evt15), any
// other error is the transport closing (Evt17).
func (a *Association) fail(err error) error {
	if diag, ok := invalidPDU(err); ok {
		_, e := a.event(Evt19, input{err: err, diag: diag})
		a.discardUntilClosed()
		return orErr(e, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		st := a.State()
		if st == Sta2 || st == Sta13 {
			// ARTIM already owns these states; let it close.
			_, e := a.event(Evt18, input{})
			return orErr(e, ErrClosed)
		}
		_, _ = a.event(Evt15, input{diag: pdu.AbortReasonNotSpecified})
		a.waitClosed()
		return ErrIdleTimeout
	}
	_, e := a.event(Evt17, input{err: err})
	return orErr(e, ErrClosed)
}

// invalidPDU reports whether a read error is an unrecognised or invalid PDU
// (Evt19), and the A-ABORT reason that answers it.
func invalidPDU(err error) (pdu.AbortReason, bool) {
	switch {
	case errors.Is(err, pdu.ErrUnknownType):
		return pdu.AbortUnrecognizedPDU, true
	case errors.Is(err, pdu.ErrMalformed), errors.Is(err, pdu.ErrTooLong):
		return pdu.AbortInvalidPDUParameterValue, true
	}
	return 0, false
}

func orErr(e, fallback error) error {
	if e != nil {
		return e
	}
	return fallback
}

// unexpected handles a well-formed PDU arriving where it has no place.
func (a *Association) unexpected(p pdu.PDU) error {
	var ev Event
	switch p.(type) {
	case *pdu.AssociateAC:
		ev = Evt3
	case *pdu.AssociateRJ:
		ev = Evt4
	case *pdu.AssociateRQ:
		ev = Evt6
	case *pdu.PDataTF:
		ev = Evt10
	case *pdu.ReleaseRQ:
		ev = Evt12
	case *pdu.ReleaseRP:
		ev = Evt13
	case *pdu.Abort:
		ev = Evt16
	}
	act, err := a.event(ev, input{pdu: p, diag: pdu.AbortUnexpectedPDU, err: fmt.Errorf("unexpected %s", p.Type())})
	if act == AA1 || act == AA8 || act == AA7 {
		a.waitClosed()
	}
	if err == nil {
		err = fmt.Errorf("ul: unexpected %s", p.Type())
	}
	return err
}

// waitClosed is Sta13: ignore PDUs (AA-6) until the peer closes (Evt17,
// AR-5) or ARTIM expires (Evt18, AA-2).
func (a *Association) waitClosed() {
	for a.State() == Sta13 {
		_ = a.conn.SetReadDeadline(time.Time{})
		p, err := a.rd.Read()
		if err != nil {
			if diag, ok := invalidPDU(err); ok {
				_, _ = a.event(Evt19, input{diag: diag})
				a.discardUntilClosed()
				continue
			}
			_, _ = a.event(Evt17, input{err: err})
			return
		}
		switch p.(type) {
		case *pdu.Abort:
			_, _ = a.event(Evt16, input{pdu: p})
		case *pdu.AssociateRQ:
			_, _ = a.event(Evt6, input{pdu: p, diag: pdu.AbortUnexpectedPDU})
		default:
			_, _ = a.event(Evt10, input{pdu: p}) // AA-6 for every other PDU
		}
	}
}

// discardUntilClosed reads and drops raw bytes in Sta13 after a stream
// error: the framing is lost, so nothing more can be decoded.
func (a *Association) discardUntilClosed() {
	if a.State() != Sta13 {
		return
	}
	_ = a.conn.SetReadDeadline(time.Time{})
	_, err := io.Copy(io.Discard, a.conn)
	_, _ = a.event(Evt17, input{err: err})
}

// ReadPDV returns the next presentation data value (DT-2 or AR-6 P-DATA
// indications). Its Data is valid until the next call. It returns
// ErrReleaseRequested on an A-RELEASE indication, *AbortError on an abort,
// ErrIdleTimeout or ErrClosed.
func (a *Association) ReadPDV() (pdu.PDV, error) {
	for len(a.pending) == 0 {
		p, err := a.readPDU()
		if err != nil {
			return pdu.PDV{}, a.fail(err)
		}
		switch v := p.(type) {
		case *pdu.PDataTF:
			if _, err := a.event(Evt10, input{pdu: v}); err != nil {
				a.waitClosed()
				return pdu.PDV{}, err
			}
			a.pending = v.PDVs
		case *pdu.ReleaseRQ:
			act, err := a.event(Evt12, input{pdu: v, diag: pdu.AbortUnexpectedPDU})
			if err != nil {
				a.waitClosed()
				return pdu.PDV{}, err
			}
			if act == AR2 || act == AR8 {
				return pdu.PDV{}, ErrReleaseRequested
			}
		case *pdu.Abort:
			_, err := a.event(Evt16, input{pdu: v})
			return pdu.PDV{}, err
		default:
			return pdu.PDV{}, a.unexpected(p)
		}
	}
	v := a.pending[0]
	a.pending = a.pending[1:]
	return v, nil
}

// RespondRelease answers an A-RELEASE indication (Evt14, AR-4) and waits
// for the peer to close the transport (Sta13).
func (a *Association) RespondRelease() error {
	if _, err := a.event(Evt14, input{}); err != nil {
		return err
	}
	a.waitClosed()
	return nil
}

// Release requests an orderly release (Evt11, AR-1) and waits for the
// A-RELEASE-RP, resolving a release collision (AR-8, AR-9/AR-10) by the
// rules of PS3.8 9.2.3: the requestor answers first.
func (a *Association) Release() error {
	if _, err := a.event(Evt11, input{}); err != nil {
		return err
	}
	for {
		p, err := a.readPDU()
		if err != nil {
			return a.fail(err)
		}
		switch v := p.(type) {
		case *pdu.PDataTF:
			// AR-6: data still in flight is indicated, and dropped here:
			// Release is only called with no operation outstanding.
			if _, err := a.event(Evt10, input{pdu: v}); err != nil {
				return err
			}
		case *pdu.ReleaseRP:
			act, err := a.event(Evt13, input{pdu: v, diag: pdu.AbortUnexpectedPDU})
			if err != nil {
				a.waitClosed()
				return err
			}
			switch act {
			case AR3:
				return nil
			case AR10: // collision, acceptor side: now answer (AR-4)
				if _, err := a.event(Evt14, input{}); err != nil {
					return err
				}
				a.waitClosed()
				return nil
			}
		case *pdu.ReleaseRQ:
			act, err := a.event(Evt12, input{pdu: v, diag: pdu.AbortUnexpectedPDU})
			if err != nil {
				a.waitClosed()
				return err
			}
			if act == AR8 && a.requestor {
				// Sta9: the requestor issues its release response first.
				if _, err := a.event(Evt14, input{}); err != nil {
					return err
				}
			}
		case *pdu.Abort:
			_, err := a.event(Evt16, input{pdu: v})
			return err
		default:
			return a.unexpected(p)
		}
	}
}

// Abort sends an A-ABORT (Evt15, AA-1) and waits, at most the ARTIM
// timeout, for the transport to close.
func (a *Association) Abort() error {
	if _, err := a.event(Evt15, input{diag: pdu.AbortReasonNotSpecified}); err != nil {
		return err
	}
	a.waitClosed()
	return nil
}

// Close closes the transport at once, whatever the state. It is the way out
// after an error has left the association unusable.
func (a *Association) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopARTIM()
	a.closeTransport()
	a.state = Sta1
}

// MaxSendData returns how many data bytes one PDV may carry towards the
// peer: its maximum PDU length minus the PDV item header, capped so a
// sender's buffer stays bounded when the peer announces "unlimited".
func (a *Association) MaxSendData() int {
	n := int(a.peerMax)
	if n == 0 || n > maxSendPDULengthLimit {
		n = maxSendPDULengthLimit
	}
	if n < minSendPDULength {
		n = minSendPDULength
	}
	// Fragments other than the last stay even: PS3.5 7.1 values are even
	// and some peers (DCMTK) refuse odd fragments.
	return (n - 6) &^ 1
}

// SendMessage sends one DIMSE message on presentation context id: the
// command set, then size bytes of data set read from data (none when data is
// nil). Each fragment is one P-DATA-TF PDU (Evt9, DT-1 or AR-7) no longer
// than the peer's maximum, and data is read straight into the PDU buffer.
func (a *Association) SendMessage(id byte, command []byte, data io.Reader, size int64) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	chunk := a.MaxSendData()
	if cap(a.wbuf) < pdu.PDataHeaderLength+chunk {
		a.wbuf = make([]byte, pdu.PDataHeaderLength+chunk)
	}
	buf := a.wbuf[:pdu.PDataHeaderLength+chunk]
	for off := 0; ; {
		n := min(chunk, len(command)-off)
		last := off+n == len(command)
		pdu.PutPDataHeader(buf, id, true, last, n)
		copy(buf[pdu.PDataHeaderLength:], command[off:off+n])
		if _, err := a.event(Evt9, input{out: buf[:pdu.PDataHeaderLength+n]}); err != nil {
			return err
		}
		off += n
		if last {
			break
		}
	}
	if data == nil {
		return nil
	}
	if size <= 0 {
		pdu.PutPDataHeader(buf, id, false, true, 0)
		_, err := a.event(Evt9, input{out: buf[:pdu.PDataHeaderLength]})
		return err
	}
	for left := size; left > 0; {
		n := int(min(int64(chunk), left))
		if _, err := io.ReadFull(data, buf[pdu.PDataHeaderLength:pdu.PDataHeaderLength+n]); err != nil {
			return fmt.Errorf("ul: reading data set: %w", err)
		}
		left -= int64(n)
		pdu.PutPDataHeader(buf, id, false, left == 0, n)
		if _, err := a.event(Evt9, input{out: buf[:pdu.PDataHeaderLength+n]}); err != nil {
			return err
		}
	}
	return nil
}

// AbortAndClose sends an A-ABORT when the state allows one (Evt15, AA-1)
// and closes the transport without waiting for the peer: the way to end an
// association whose stream can no longer be trusted, or on shutdown. It may
// be called from any goroutine.
func (a *Association) AbortAndClose() {
	_, _ = a.event(Evt15, input{diag: pdu.AbortReasonNotSpecified})
	a.Close()
}
