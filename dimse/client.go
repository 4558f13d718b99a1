package dimse

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/pdu"
	"dicomgate/dimse/ul"
)

// ErrNoContext reports that no accepted presentation context fits a
// request (its SOP class and transfer syntax were not accepted).
var ErrNoContext = errors.New("dimse: no accepted presentation context")

// ContextProposal is one presentation context an SCU proposes.
type ContextProposal struct {
	AbstractSyntax   string
	TransferSyntaxes []string
}

// ClientConfig configures an SCU association.
type ClientConfig struct {
	CallingAETitle string // defaults to "DICOMGATE"
	CalledAETitle  string // defaults to "ANY-SCP"
	// TLS, when set, runs the association over DICOM TLS.
	TLS *tls.Config
	UL  ul.Config
}

// Client is an established SCU association.
type Client struct {
	a        *ul.Association
	contexts map[[2]string]byte // (abstract syntax, transfer syntax) -> context ID
	msgID    uint16
}

// Dial opens an association to addr proposing contexts (at most 128).
func Dial(ctx context.Context, addr string, cfg ClientConfig, contexts []ContextProposal) (*Client, error) {
	if len(contexts) == 0 || len(contexts) > 128 {
		return nil, fmt.Errorf("dimse: %d presentation contexts (1..128)", len(contexts))
	}
	if cfg.CallingAETitle == "" {
		cfg.CallingAETitle = "DICOMGATE"
	}
	if cfg.CalledAETitle == "" {
		cfg.CalledAETitle = "ANY-SCP"
	}
	rq := &pdu.AssociateRQ{
		ProtocolVersion:    1,
		CalledAETitle:      cfg.CalledAETitle,
		CallingAETitle:     cfg.CallingAETitle,
		ApplicationContext: pdu.ApplicationContextName,
		UserInformation: pdu.UserInformation{
			ImplementationClassUID:    ImplementationClassUID,
			ImplementationVersionName: ImplementationVersionName,
		},
	}
	for i, c := range contexts {
		rq.PresentationContexts = append(rq.PresentationContexts, pdu.PresentationContextRQ{
			ID: byte(2*i + 1), AbstractSyntax: c.AbstractSyntax, TransferSyntaxes: c.TransferSyntaxes})
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if cfg.TLS != nil {
			tc := tls.Client(conn, cfg.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return nil, err
			}
			return tc, nil
		}
		return conn, nil
	}
	a, err := ul.Request(ctx, dial, rq, cfg.UL)
	if err != nil {
		return nil, err
	}
	c := &Client{a: a, contexts: map[[2]string]byte{}}
	for _, pc := range a.Accepted().PresentationContexts {
		if pc.Result != pdu.ContextAcceptance || int(pc.ID) > 2*len(contexts) || pc.ID%2 == 0 {
			continue
		}
		as := contexts[pc.ID/2].AbstractSyntax
		c.contexts[[2]string{as, pc.TransferSyntax}] = pc.ID
	}
	return c, nil
}

// Accepted reports whether a context for abstract syntax as and transfer
// syntax ts was accepted.
func (c *Client) Accepted(as, ts string) bool {
	_, ok := c.contexts[[2]string{as, ts}]
	return ok
}

// Association returns the underlying upper layer association.
func (c *Client) Association() *ul.Association { return c.a }

func (c *Client) nextID() uint16 {
	c.msgID++
	if c.msgID == 0 {
		c.msgID = 1
	}
	return c.msgID
}

// Echo sends a C-ECHO-RQ and waits for its response.
func (c *Client) Echo(ctx context.Context) error {
	id, ok := c.contextFor(VerificationSOPClass, "")
	if !ok {
		return fmt.Errorf("%w for Verification", ErrNoContext)
	}
	cmd := &Command{AffectedSOPClassUID: VerificationSOPClass, CommandField: CommandCEchoRQ, MessageID: c.nextID()}
	return c.roundTrip(ctx, id, cmd, nil, 0)
}

// Store sends a C-STORE-RQ with size bytes of data set read from data,
// encoded in transfer syntax ts, and waits for the response. A failure
// status is returned as *StatusError; warnings are not errors.
func (c *Client) Store(ctx context.Context, sopClass, sopInstance, ts string, data io.Reader, size int64) error {
	id, ok := c.contextFor(sopClass, ts)
	if !ok {
		return fmt.Errorf("%w for %s in %s", ErrNoContext, sopClass, ts)
	}
	cmd := &Command{AffectedSOPClassUID: sopClass, AffectedSOPInstanceUID: sopInstance, CommandField: CommandCStoreRQ,
		MessageID: c.nextID(), Priority: PriorityMedium, HasDataSet: true}
	if size%2 == 1 && ts == dataset.DeflatedExplicitVRLittleEndian {
		// PS3.5 A.5: an odd-length deflated bit stream is padded with one
		// NUL byte; peers (DCMTK) refuse odd fragments.
		data, size = io.MultiReader(data, bytes.NewReader([]byte{0})), size+1
	}
	return c.roundTrip(ctx, id, cmd, data, size)
}

func (c *Client) contextFor(as, ts string) (byte, bool) {
	if ts != "" {
		id, ok := c.contexts[[2]string{as, ts}]
		return id, ok
	}
	for k, id := range c.contexts {
		if k[0] == as {
			return id, true
		}
	}
	return 0, false
}

func (c *Client) roundTrip(ctx context.Context, id byte, cmd *Command, data io.Reader, size int64) error {
	stop := context.AfterFunc(ctx, c.a.AbortAndClose)
	defer stop()
	if err := c.a.SendMessage(id, cmd.Encode(), data, size); err != nil {
		// A message cut short leaves the association unusable.
		c.a.AbortAndClose()
		return c.ctxErr(ctx, err)
	}
	rsp, _, err := readCommand(c.a)
	if err != nil {
		if errors.Is(err, ErrBadCommand) || errors.Is(err, errProtocol) {
			c.a.AbortAndClose()
		}
		return c.ctxErr(ctx, err)
	}
	if rsp.CommandField != cmd.CommandField|0x8000 || rsp.MessageIDBeingRespondedTo != cmd.MessageID {
		c.a.AbortAndClose()
		return fmt.Errorf("%w: response %04X to message %d, expected %04X to %d", errProtocol,
			rsp.CommandField, rsp.MessageIDBeingRespondedTo, cmd.CommandField|0x8000, cmd.MessageID)
	}
	if rsp.HasDataSet {
		c.a.AbortAndClose()
		return fmt.Errorf("%w: response with a data set", errProtocol)
	}
	if rsp.Status.IsFailure() {
		return &StatusError{Status: rsp.Status, Comment: rsp.ErrorComment}
	}
	return nil
}

func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// Release releases the association (A-RELEASE).
func (c *Client) Release() error { return c.a.Release() }

// Abort aborts the association (A-ABORT) and closes it.
func (c *Client) Abort() { c.a.AbortAndClose() }

// ProposalsFor returns presentation contexts for the given (SOP class,
// transfer syntax) pairs: one context per pair, so a file is always sent in
// its own transfer syntax, never converted.
func ProposalsFor(pairs [][2]string) []ContextProposal {
	out := make([]ContextProposal, 0, len(pairs))
	for _, p := range pairs {
		ts := p[1]
		if _, ok := dataset.LookupTransferSyntax(ts); !ok {
			continue
		}
		out = append(out, ContextProposal{AbstractSyntax: p[0], TransferSyntaxes: []string{ts}})
	}
	return out
}
