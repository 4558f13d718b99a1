package dimse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/pdu"
	"dicomgate/dimse/ul"
)

// ImplementationClassUID identifies dicomgate in A-ASSOCIATE PDUs and file
// meta headers (a UUID-derived UID under 2.25, PS3.5 B.2).
const ImplementationClassUID = "2.25.230961759455488850904528694901452004832"

// ImplementationVersionName is dicomgate's implementation version name.
const ImplementationVersionName = "DICOMGATE_1"

// DefaultTransferSyntaxes is the default preference list: among the
// syntaxes a context proposes, the first one found here is chosen; any other
// known syntax proposed is accepted as is after these.
var DefaultTransferSyntaxes = []string{
	dataset.ExplicitVRLittleEndian,
	dataset.ImplicitVRLittleEndian,
}

// CallerRule admits a calling AE title, optionally only from one host.
type CallerRule struct {
	AETitle string
	Host    string // IP address or host name; empty admits any address
}

// ParseCallerRule parses "AE" or "AE@host".
func ParseCallerRule(s string) (CallerRule, error) {
	ae, host, _ := strings.Cut(strings.TrimSpace(s), "@")
	ae = strings.TrimSpace(ae)
	if ae == "" || len(ae) > 16 {
		return CallerRule{}, fmt.Errorf("dimse: invalid AE title in %q", s)
	}
	return CallerRule{AETitle: ae, Host: host}, nil
}

// Server is a DICOM storage SCP (and Verification SCP). Set the fields
// before calling Serve; they must not change afterwards.
type Server struct {
	// AETitle is the called AE title the server answers to (else 1/1/7).
	AETitle string
	// AllowedCallers, when not empty, lists the calling AE titles admitted
	// (else 1/1/3).
	AllowedCallers []CallerRule
	// MaxAssociations limits concurrent associations (else transient
	// rejection 2/3/2); zero means 32.
	MaxAssociations int
	// AcceptUnknownSOPClasses also accepts abstract syntaxes the PS3.6
	// dictionary does not know (private storage classes).
	AcceptUnknownSOPClasses bool
	// TransferSyntaxes is the preference list; nil means
	// DefaultTransferSyntaxes.
	TransferSyntaxes []string
	// Handler stores instances.
	Handler Handler
	// Logger receives association logs; nil discards them.
	Logger *slog.Logger
	// UL configures the upper layer (timeouts, maximum PDU length).
	UL ul.Config

	once sync.Once
	sem  chan struct{}
	wg   sync.WaitGroup
	live liveAssociations // see associations.go
}

func (s *Server) init() {
	s.once.Do(func() {
		n := s.MaxAssociations
		if n <= 0 {
			n = 32
		}
		s.sem = make(chan struct{}, n)
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Serve accepts connections on ln until ctx is done, then closes ln, aborts
// the associations still open and waits for them. It returns nil after a
// cancellation and the listener's error otherwise. A failing connection never
// stops the listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.init()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var tempDelay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.shutdown()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			s.shutdown()
			return err
		}
		tempDelay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ServeConn(ctx, conn)
		}()
	}
}

// isTemporary reports an accept error that passes once a connection
// closes: the process or the system is out of file descriptors.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

func (s *Server) shutdown() {
	s.live.abortAll()
	s.wg.Wait()
}

// ServeConn runs one association on conn and closes it. It never panics on
// peer input; a panic in a Handler is recovered and aborts the association.
// Once Serve has begun to shut down, an association is aborted as soon as
// it is established.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) {
	s.init()
	log := s.Logger.With("peer", conn.RemoteAddr().String())
	tc, isTLS := conn.(*tls.Conn)
	if isTLS {
		_ = tc.SetDeadline(time.Now().Add(s.artim()))
		if err := tc.HandshakeContext(ctx); err != nil {
			log.Warn("dicom tls handshake failed", "err", err)
			_ = conn.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
	}
	var acquired bool
	defer func() {
		if acquired {
			<-s.sem
		}
	}()
	var accepted map[byte]string // context ID -> transfer syntax
	a, err := ul.Accept(conn, s.UL, func(rq *pdu.AssociateRQ) (*pdu.AssociateAC, *pdu.AssociateRJ) {
		if rj := s.admit(rq, conn.RemoteAddr()); rj != nil {
			log.Info("association rejected", "calling", rq.CallingAETitle, "called", rq.CalledAETitle, "reject", rj.String())
			return nil, rj
		}
		select {
		case s.sem <- struct{}{}:
			acquired = true
		default:
			log.Warn("association rejected: limit reached", "calling", rq.CallingAETitle, "limit", cap(s.sem))
			return nil, &pdu.AssociateRJ{Result: pdu.RejectedTransient, Source: pdu.SourceServiceProviderPresentation, Reason: pdu.ReasonLocalLimitExceeded}
		}
		var ac *pdu.AssociateAC
		ac, accepted = s.negotiate(rq)
		return ac, nil
	})
	if err != nil {
		log.Debug("association not established", "err", err)
		return
	}
	defer a.Close()
	rq := a.Request()
	info := AssociationInfo{CallingAETitle: rq.CallingAETitle, CalledAETitle: rq.CalledAETitle, RemoteAddr: conn.RemoteAddr(), TLS: isTLS}
	la, ok := s.live.add(a, info)
	if !ok {
		// Accepted while the server shut down: abortAll has already run.
		log.Info("association aborted: server shutting down")
		a.AbortAndClose()
		return
	}
	defer s.live.remove(la)
	log = log.With("calling", info.CallingAETitle)
	log.Debug("association accepted", "contexts", len(accepted))
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic while serving association", "panic", r)
			a.AbortAndClose()
		}
	}()
	n, err := s.serveMessages(ctx, a, info, accepted, log, la)
	switch {
	case errors.Is(err, ul.ErrReleaseRequested):
		if err := a.RespondRelease(); err != nil {
			log.Warn("association release failed", "stored", n, "err", err)
			return
		}
		log.Info("association released", "stored", n)
	case isPeerAbort(err):
		log.Info("association aborted by peer", "stored", n)
	default:
		log.Warn("association ended", "stored", n, "err", err)
	}
}

func isPeerAbort(err error) bool {
	var ae *ul.AbortError
	return errors.As(err, &ae) && !ae.Local
}

func (s *Server) artim() time.Duration {
	if s.UL.ARTIMTimeout > 0 {
		return s.UL.ARTIMTimeout
	}
	return ul.DefaultARTIMTimeout
}

// admit applies the access rules to an A-ASSOCIATE-RQ.
func (s *Server) admit(rq *pdu.AssociateRQ, remote net.Addr) *pdu.AssociateRJ {
	if rq.ApplicationContext != pdu.ApplicationContextName {
		return &pdu.AssociateRJ{Result: pdu.RejectedPermanent, Source: pdu.SourceServiceUser, Reason: pdu.ReasonApplicationContextNotSupported}
	}
	// AE titles are case sensitive; only leading and trailing spaces are
	// not significant (PS3.5 table 6.2-1).
	if strings.TrimSpace(rq.CalledAETitle) != strings.TrimSpace(s.AETitle) {
		return &pdu.AssociateRJ{Result: pdu.RejectedPermanent, Source: pdu.SourceServiceUser, Reason: pdu.ReasonCalledAETitleNotRecognized}
	}
	if len(s.AllowedCallers) > 0 && !s.callerAllowed(rq.CallingAETitle, remote) {
		return &pdu.AssociateRJ{Result: pdu.RejectedPermanent, Source: pdu.SourceServiceUser, Reason: pdu.ReasonCallingAETitleNotRecognized}
	}
	return nil
}

func (s *Server) callerAllowed(calling string, remote net.Addr) bool {
	host, _, err := net.SplitHostPort(remote.String())
	if err != nil {
		host = remote.String()
	}
	rip := net.ParseIP(host)
	for _, r := range s.AllowedCallers {
		if r.AETitle != calling {
			continue
		}
		if r.Host == "" {
			return true
		}
		if ip := net.ParseIP(r.Host); ip != nil {
			if rip != nil && ip.Equal(rip) {
				return true
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, r.Host)
		cancel()
		if err == nil && rip != nil && slices.ContainsFunc(addrs, func(a net.IPAddr) bool { return a.IP.Equal(rip) }) {
			return true
		}
	}
	return false
}

// negotiate builds the A-ASSOCIATE-AC for rq and the accepted contexts.
func (s *Server) negotiate(rq *pdu.AssociateRQ) (*pdu.AssociateAC, map[byte]string) {
	pref := s.TransferSyntaxes
	if pref == nil {
		pref = DefaultTransferSyntaxes
	}
	accepted := map[byte]string{}
	ac := &pdu.AssociateAC{
		ProtocolVersion:    1,
		CalledAETitle:      rq.CalledAETitle,
		CallingAETitle:     rq.CallingAETitle,
		ApplicationContext: pdu.ApplicationContextName,
		UserInformation: pdu.UserInformation{
			MaxLength:                 s.maxPDU(),
			ImplementationClassUID:    ImplementationClassUID,
			ImplementationVersionName: ImplementationVersionName,
		},
	}
	for _, pc := range rq.PresentationContexts {
		res := pdu.PresentationContextAC{ID: pc.ID}
		switch {
		case !s.abstractSupported(pc.AbstractSyntax):
			res.Result = pdu.ContextAbstractSyntaxNotSupported
		default:
			ts := chooseTransferSyntax(pc.TransferSyntaxes, pref)
			if ts == "" {
				res.Result = pdu.ContextTransferSyntaxesNotSupported
			} else {
				res.Result, res.TransferSyntax = pdu.ContextAcceptance, ts
				accepted[pc.ID] = ts
			}
		}
		if res.TransferSyntax == "" {
			// PS3.8 9.3.3.2: the sub-item is present but not significant.
			res.TransferSyntax = dataset.ImplicitVRLittleEndian
		}
		ac.PresentationContexts = append(ac.PresentationContexts, res)
	}
	ui := rq.UserInformation
	if ui.AsyncOperations != nil {
		// Operations are performed one at a time (PS3.7 D.3.3.3).
		ac.UserInformation.AsyncOperations = &pdu.AsyncOperationsWindow{MaxOperationsInvoked: 1, MaxOperationsPerformed: 1}
	}
	for _, r := range ui.RoleSelections {
		// The requestor may be SCU of what we accept; we never act as SCU
		// towards it (no C-GET), so its SCP role is refused.
		ac.UserInformation.RoleSelections = append(ac.UserInformation.RoleSelections,
			pdu.RoleSelection{SOPClassUID: r.SOPClassUID, SCURole: r.SCURole, SCPRole: false})
	}
	// Extended negotiation and user identity are not supported: PS3.7
	// D.3.3.5 and D.3.3.7 let the acceptor omit the answer items.
	return ac, accepted
}

func (s *Server) maxPDU() uint32 {
	if s.UL.MaxPDULength > 0 {
		return s.UL.MaxPDULength
	}
	return ul.DefaultMaxPDULength
}

func (s *Server) abstractSupported(as string) bool {
	if as == VerificationSOPClass || IsStorageSOPClass(as) {
		return true
	}
	return s.AcceptUnknownSOPClasses && !isKnownUID(as)
}

// chooseTransferSyntax returns the first syntax of pref that is proposed,
// else the first proposed syntax the dataset package knows, else "".
func chooseTransferSyntax(proposed, pref []string) string {
	for _, p := range pref {
		if slices.Contains(proposed, p) {
			return p
		}
	}
	for _, p := range proposed {
		if _, ok := dataset.LookupTransferSyntax(p); ok {
			return p
		}
	}
	return ""
}

// errProtocol reports a DIMSE-level protocol violation; the association is
// aborted.
var errProtocol = errors.New("dimse: protocol violation")

// serveMessages runs the DIMSE loop of an established association until it
// ends; it returns ul.ErrReleaseRequested on a release request.
func (s *Server) serveMessages(ctx context.Context, a *ul.Association, info AssociationInfo, accepted map[byte]string, log *slog.Logger, la *liveAssociation) (int, error) {
	stored := 0
	for {
		cmd, pcid, err := readCommand(a)
		if err != nil {
			if errors.Is(err, ErrBadCommand) || errors.Is(err, errProtocol) {
				a.AbortAndClose()
			}
			return stored, err
		}
		ts, ok := accepted[pcid]
		if !ok {
			a.AbortAndClose()
			return stored, fmt.Errorf("%w: message on presentation context %d not accepted", errProtocol, pcid)
		}
		var data *dataReader
		if cmd.HasDataSet {
			data = &dataReader{a: a, pcid: pcid}
		}
		rsp := &Command{AffectedSOPClassUID: cmd.AffectedSOPClassUID, MessageIDBeingRespondedTo: cmd.MessageID,
			AffectedSOPInstanceUID: cmd.AffectedSOPInstanceUID}
		switch cmd.CommandField {
		case CommandCEchoRQ:
			rsp.CommandField = CommandCEchoRSP
			rsp.AffectedSOPInstanceUID = ""
		case CommandCStoreRQ:
			rsp.CommandField = CommandCStoreRSP
			if data == nil {
				rsp.Status, rsp.ErrorComment = StatusCannotUnderstand, "C-STORE without data set"
				break
			}
			req := &StoreRequest{Association: info, SOPClassUID: cmd.AffectedSOPClassUID, SOPInstanceUID: cmd.AffectedSOPInstanceUID,
				TransferSyntaxUID: ts, MessageID: cmd.MessageID, Priority: cmd.Priority,
				MoveOriginatorAETitle: cmd.MoveOriginatorAETitle, MoveOriginatorMessageID: cmd.MoveOriginatorMessageID}
			herr := s.Handler.Store(ctx, req, data)
			if data.err != nil && !errors.Is(data.err, io.EOF) {
				// The transfer itself failed: there is no one to answer.
				return stored, data.err
			}
			rsp.Status, rsp.ErrorComment = StatusOf(herr)
			if herr == nil {
				stored++
				la.stored()
			} else {
				log.Warn("C-STORE failed", "sop_instance", cmd.AffectedSOPInstanceUID, "status", rsp.Status.String(), "err", herr)
			}
		default:
			rsp.CommandField = cmd.CommandField | 0x8000
			rsp.Status = StatusUnrecognizedOperation
		}
		if data != nil {
			if _, err := io.Copy(io.Discard, data); err != nil {
				return stored, err
			}
		}
		if err := a.SendMessage(pcid, rsp.Encode(), nil, 0); err != nil {
			return stored, err
		}
	}
}

// readCommand reads the fragments of one command set.
func readCommand(a *ul.Association) (*Command, byte, error) {
	var buf []byte
	var pcid byte
	for {
		pdv, err := a.ReadPDV()
		if err != nil {
			return nil, 0, err
		}
		if !pdv.Command {
			return nil, 0, fmt.Errorf("%w: data set fragment where a command was expected", errProtocol)
		}
		if buf != nil && pdv.ContextID != pcid {
			return nil, 0, fmt.Errorf("%w: command fragments on two presentation contexts", errProtocol)
		}
		pcid = pdv.ContextID
		if len(buf)+len(pdv.Data) > maxCommandLength {
			return nil, 0, fmt.Errorf("%w: command set over %d bytes", ErrBadCommand, maxCommandLength)
		}
		buf = append(buf, pdv.Data...)
		if pdv.Last {
			cmd, err := DecodeCommand(buf)
			return cmd, pcid, err
		}
	}
}

// dataReader streams the data set fragments of one message.
type dataReader struct {
	a    *ul.Association
	pcid byte
	cur  []byte
	done bool
	err  error
}

func (d *dataReader) Read(p []byte) (int, error) {
	for len(d.cur) == 0 {
		if d.done {
			return 0, io.EOF
		}
		if d.err != nil {
			return 0, d.err
		}
		pdv, err := d.a.ReadPDV()
		if err != nil {
			if errors.Is(err, ul.ErrReleaseRequested) {
				err = fmt.Errorf("%w: release requested in the middle of a data set", errProtocol)
				d.a.AbortAndClose()
			}
			d.err = err
			return 0, err
		}
		if pdv.Command || pdv.ContextID != d.pcid {
			d.err = fmt.Errorf("%w: fragment on context %d (command %v) inside a data set on context %d", errProtocol, pdv.ContextID, pdv.Command, d.pcid)
			d.a.AbortAndClose()
			return 0, d.err
		}
		d.cur, d.done = pdv.Data, pdv.Last
	}
	n := copy(p, d.cur)
	d.cur = d.cur[n:]
	return n, nil
}
