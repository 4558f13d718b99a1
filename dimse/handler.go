// Package dimse is dicomgate's DICOM network layer: the DIMSE services of
// DICOM PS3.7 (command sets in implicit VR little endian, C-ECHO and
// C-STORE as SCP and SCU, message ID matching, status codes as typed errors)
// over the upper layer of PS3.8 (package ul), with the association
// negotiation and access rules of a storage receiver: Verification and every
// Storage SOP Class of PS3.4 annex B, a transfer syntax chosen per
// presentation context from a preference list, compressed syntaxes accepted
// as they are, called AE title check (A-ASSOCIATE-RJ 1/1/7), calling AE
// allow-list (1/1/3), an association limit (2/3/2) and optional DICOM TLS.
//
// A Server hands every C-STORE to a Handler, the one interface a consumer
// implements; SpoolHandler stores into a spool.Spool, and a gateway wraps
// that. Incoming data sets are streamed: no instance is ever held in memory.
//
// Statuses: the Handler's error is mapped to the C-STORE response status in
// one place, StatusOf: nil is success, a full disk A700, a data set that
// contradicts its command A900, an unparseable one C000 with an error
// comment. The spool's duplicate policy (first durable copy kept, later
// copies acknowledged with success) is documented in package spool.
package dimse

import (
	"context"
	"io"
	"net"

	"dicomgate/dimse/spool"
)

// AssociationInfo is what a Handler knows about the association a request
// arrived on.
type AssociationInfo struct {
	CallingAETitle string   // the peer's AE title, as it announced it
	CalledAETitle  string   // this server's AE title
	RemoteAddr     net.Addr // the peer's transport address
	TLS            bool     // the association runs over DICOM TLS
}

// StoreRequest is one C-STORE request as a Handler sees it.
type StoreRequest struct {
	Association       AssociationInfo
	SOPClassUID       string // Affected SOP Class UID
	SOPInstanceUID    string // Affected SOP Instance UID
	TransferSyntaxUID string // of the presentation context: how the data set is encoded
	MessageID         uint16
	Priority          uint16
	// MoveOriginatorAETitle and MoveOriginatorMessageID are set when the
	// store is a sub-operation of a C-MOVE.
	MoveOriginatorAETitle   string
	MoveOriginatorMessageID uint16
}

// Handler stores the instances a Server receives.
//
// Store is called once per C-STORE request, on the association's goroutine
// (so calls of one association are sequential; different associations call
// it concurrently). data streams the data set exactly as received, in
// req.TransferSyntaxUID; it returns io.EOF at the end of the data set and
// another error if the association fails mid-transfer. Store must not keep
// data after returning; unread bytes are discarded by the server.
//
// Return nil only once the instance is durable: the server then answers
// success (0000). Any error becomes the response status through StatusOf: a
// *StatusError chooses the status itself (warnings included), spool and
// dataset errors map to A700, A900 and C000, others to 0110. ctx is
// cancelled when the server shuts down.
type Handler interface {
	Store(ctx context.Context, req *StoreRequest, data io.Reader) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *StoreRequest, data io.Reader) error

// Store implements Handler.
func (f HandlerFunc) Store(ctx context.Context, req *StoreRequest, data io.Reader) error {
	return f(ctx, req, data)
}

var _ Handler = HandlerFunc(nil)

// SpoolHandler returns a Handler that stores every instance in s. A gateway
// wanting to act on stored instances wraps s the same way:
//
//	func (g *Gateway) Store(ctx context.Context, req *dimse.StoreRequest, r io.Reader) error {
//		st, err := g.spool.Put(ctx, dimse.SpoolInstance(req), r)
//		if err != nil {
//			return err
//		}
//		return g.enqueue(ctx, st) // must itself be durable before returning nil
//	}
func SpoolHandler(s *spool.Spool) Handler {
	return HandlerFunc(func(ctx context.Context, req *StoreRequest, data io.Reader) error {
		_, err := s.Put(ctx, SpoolInstance(req), data)
		return err
	})
}

// SpoolInstance converts a request to the spool's description of it.
func SpoolInstance(req *StoreRequest) spool.Instance {
	return spool.Instance{
		SOPClassUID:       req.SOPClassUID,
		SOPInstanceUID:    req.SOPInstanceUID,
		TransferSyntaxUID: req.TransferSyntaxUID,
		CallingAETitle:    req.Association.CallingAETitle,
	}
}
