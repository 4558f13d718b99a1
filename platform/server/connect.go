package server

// Patient Connect (SPEC §7): CreateConnectRequest v1,
// GetAuthorizedConnectRequests v1, DeletePendingConnectRequest v1 and
// UpdateExternalId v1 (shared with DOPU), the patient side that answers a
// request and authorizes the application for a record, and what the
// patient pages need from the server (blob URLs and blob files of a
// record).

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"dicomgate/platform/dopu"
	"dicomgate/platform/provision"
	"dicomgate/platform/store"
	"dicomgate/platform/wire"
)

// CreateConnectRequestRequest is the info of CreateConnectRequest
// (method-createconnectrequest.xsd).
type CreateConnectRequestRequest struct {
	FriendlyName string `xml:"friendly-name"`
	Question     string `xml:"question"`
	Answer       string `xml:"answer"`
	ExternalID   string `xml:"external-id"`
	CallbackURL  string `xml:"call-back-url,omitempty"`
}

// maxAnswer bounds the answer (argon2id cost does not depend on it, but
// the request should not carry megabytes of it).
const maxAnswer = 256

func (s *Server) createConnectRequest(ctx context.Context, c *Call) (any, error) {
	var req CreateConnectRequestRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	if err := checkQuestion(req.Question); err != nil {
		return nil, err
	}
	if req.Answer == "" || len(req.Answer) > maxAnswer {
		return nil, wire.Errorf(wire.InvalidVerificationAnswer, "the answer is empty or longer than %d bytes", maxAnswer)
	}
	if err := checkText("friendly-name", req.FriendlyName); err != nil {
		return nil, err
	}
	if err := checkText("external-id", req.ExternalID); err != nil {
		return nil, err
	}
	if len(req.CallbackURL) > maxTextField {
		return nil, wire.Errorf(wire.InvalidXML, "call-back-url is longer than %d bytes", maxTextField)
	}
	code, err := s.reserveCode(ctx, c.Now)
	if err != nil {
		return nil, err
	}
	r := store.ConnectRequest{IdentityCode: code, AppID: c.AppID, ExternalID: req.ExternalID, FriendlyName: req.FriendlyName,
		Question: req.Question, AnswerHash: provision.HashPassword(dopu.NormalizeAnswer(req.Answer)), CallbackURL: req.CallbackURL,
		Created: c.Now, Expires: c.Now.Add(s.cfg.Connect.RequestTTL)}
	if err := s.st.CreateConnectRequest(ctx, r); errors.Is(err, store.ErrPendingExists) {
		return nil, wire.Errorf(wire.DuplicateConnectRequestFound, "the application has a pending connect request for this external id")
	} else if err != nil {
		return nil, err
	}
	return &identityCodeInfo{IdentityCode: code}, nil
}

// GetAuthorizedConnectRequestsRequest is the info of
// GetAuthorizedConnectRequests (method-getauthorizedconnectrequests.xsd).
type GetAuthorizedConnectRequestsRequest struct {
	Since *time.Time `xml:"authorized-connect-requests-since,omitempty"`
}

// AuthorizedConnectRequests is the response info: a resume-key when more
// requests follow (pass it as the next since), then the requests.
type AuthorizedConnectRequests struct {
	ResumeKey *time.Time             `xml:"resume-key,omitempty"`
	Requests  []AuthorizedConnectRow `xml:"connect-request"`
}

// AuthorizedConnectRow is one connect-request element.
type AuthorizedConnectRow struct {
	PersonID   string `xml:"person-id"`
	RecordID   string `xml:"record-id"`
	AppID      string `xml:"app-id"`
	ExternalID string `xml:"external-id"`
}

func (s *Server) getAuthorizedConnectRequests(ctx context.Context, c *Call) (any, error) {
	var req GetAuthorizedConnectRequestsRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	cc := s.cfg.Connect
	q := store.AuthorizedQuery{AppID: c.AppID, NotBefore: c.Now.Add(-cc.ValidatedRetention), Limit: cc.AuthorizedPageSize + 1}
	if req.Since != nil {
		q.Since = *req.Since
	}
	rows, err := s.st.AuthorizedConnectRequests(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := &AuthorizedConnectRequests{}
	if len(rows) > cc.AuthorizedPageSize {
		// Authorized times are unique per application, so the next page
		// starts exactly at the first request not returned.
		next := rows[cc.AuthorizedPageSize].Authorized.UTC()
		resp.ResumeKey = &next
		rows = rows[:cc.AuthorizedPageSize]
	}
	for _, r := range rows {
		resp.Requests = append(resp.Requests, AuthorizedConnectRow{PersonID: r.PersonID, RecordID: r.RecordID, AppID: r.AppID, ExternalID: r.ExternalID})
	}
	return resp, nil
}

type deletePendingConnectRequestRequest struct {
	ExternalID string `xml:"external-id"`
}

func (s *Server) deletePendingConnectRequest(ctx context.Context, c *Call) (any, error) {
	var req deletePendingConnectRequestRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.ExternalID) == "" {
		return nil, wire.Errorf(wire.InvalidXML, "external-id is empty")
	}
	if err := s.st.DeletePendingConnectRequest(ctx, c.AppID, req.ExternalID); errors.Is(err, store.ErrNotFound) {
		return nil, wire.Errorf(wire.InvalidIdentityCode, "the application has no pending connect request for this external id")
	} else if err != nil {
		return nil, err
	}
	return nil, nil
}

// UpdateExternalIDRequest is the info of UpdateExternalId
// (method-updateexternalid.xsd): identity-code or old-external-id, then
// new-external-id.
type UpdateExternalIDRequest struct {
	IdentityCode  string `xml:"identity-code,omitempty"`
	OldExternalID string `xml:"old-external-id,omitempty"`
	NewExternalID string `xml:"new-external-id"`
}

func (s *Server) updateExternalID(ctx context.Context, c *Call) (any, error) {
	var req UpdateExternalIDRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	if err := checkText("new-external-id", req.NewExternalID); err != nil {
		return nil, err
	}
	code, err := codeOrExternalID(req.IdentityCode, "old-external-id", req.OldExternalID)
	if err != nil {
		return nil, err
	}
	n, err := s.st.UpdateExternalID(ctx, c.AppID, code, req.OldExternalID, req.NewExternalID)
	switch {
	case errors.Is(err, store.ErrPendingExists):
		return nil, wire.Errorf(wire.DuplicateConnectRequestFound, "the application has a pending connect request for the new external id")
	case err != nil:
		return nil, err
	case n == 0:
		return nil, wire.Errorf(wire.InvalidIdentityCode, "no package or connect request of this application matches")
	}
	return nil, nil
}

func connectCoded(r store.ConnectRequest) coded {
	return coded{IdentityCode: r.IdentityCode, FriendlyName: r.FriendlyName, Question: r.Question,
		AppID: r.AppID, WrongAnswers: r.WrongAnswers}
}

// loadConnect returns the answerable connect request with the typed code.
// A validated request can be answered again (re-authorization, another
// record), as HealthVault allowed.
func (s *Server) loadConnect(ctx context.Context, typed string) (store.ConnectRequest, error) {
	return loadCoded(ctx, s, typed, s.st.GetConnectRequest, connectCoded, func(r store.ConnectRequest) error {
		if r.State == store.ConnectPending && !s.cfg.Now().Before(r.Expires) {
			return ErrExpired
		}
		return nil
	})
}

// ConnectChallenge returns the friendly name and question of the connect
// request with the typed code.
func (s *Server) ConnectChallenge(ctx context.Context, typed string) (Challenge, error) {
	return challengeOf(ctx, s, typed, s.loadConnect, connectCoded)
}

// CheckConnectAnswer compares the answer (normalized like the SDK did:
// lower-cased, not trimmed) with the stored argon2id hash in constant
// time. A wrong answer is counted (*WrongAnswerError or ErrLocked).
func (s *Server) CheckConnectAnswer(ctx context.Context, typed, answer string) error {
	r, err := s.loadConnect(ctx, typed)
	if err != nil {
		return err
	}
	// Take the try first and give it back when the answer was right (see
	// UnlockPackage).
	t, err := s.takeTry(ctx, r.IdentityCode, s.st.TakeConnectTry, s.st.ReturnConnectTry)
	if err != nil {
		return err
	}
	if len(answer) > maxAnswer || !provision.CheckPassword(r.AnswerHash, dopu.NormalizeAnswer(answer)) {
		return t.wrong()
	}
	t.giveBack(ctx)
	return nil
}

// AuthorizeConnect completes a connect request whose answer was checked:
// the application is authorized for the person's record and the request
// becomes retrievable by GetAuthorizedConnectRequests. It returns the
// application's success message.
func (s *Server) AuthorizeConnect(ctx context.Context, typed, personID, recordID string) (string, error) {
	r, err := s.loadConnect(ctx, typed)
	if err != nil {
		return "", err
	}
	if _, err := s.personRecord(ctx, personID, recordID); err != nil {
		return "", err
	}
	if err := s.st.Authorize(ctx, store.Authorization{AppID: r.AppID, RecordID: recordID, Granted: s.cfg.Now()}); err != nil {
		return "", err
	}
	if _, err := s.st.ValidateConnectRequest(ctx, r.IdentityCode, personID, recordID, s.cfg.Now()); errors.Is(err, store.ErrNotPending) {
		return "", ErrInvalidCode
	} else if err != nil {
		return "", err
	}
	if err := s.st.AddAudit(ctx, store.AuditEvent{At: s.cfg.Now(), Action: "connect", PersonID: personID, RecordID: recordID,
		AppID: r.AppID, Detail: r.FriendlyName}); err != nil {
		s.log.Warn("audit connect", "err", err)
	}
	return s.successMessage(ctx, r.AppID), nil
}

// Connect answers a connect request and authorizes its application for
// the person's record: the whole Patient Connect flow without a browser.
func (s *Server) Connect(ctx context.Context, code, answer, personID, recordID string) error {
	if err := s.CheckConnectAnswer(ctx, code, answer); err != nil {
		return err
	}
	_, err := s.AuthorizeConnect(ctx, code, personID, recordID)
	return err
}

// BlobReadURL returns an expiring read URL (DownloadTokenTTL) of a blob of
// a record, served with contentType: what the patient pages use as image
// sources.
func (s *Server) BlobReadURL(recordID, blobID, contentType string) string {
	return s.readURL(recordID, blobID, contentType, s.cfg.Now())
}

// OpenRecordBlob opens the bytes of a complete blob of a record (for the
// patient pages' zip download, which streams them).
func (s *Server) OpenRecordBlob(ctx context.Context, recordID, blobID string) (io.ReadCloser, int64, error) {
	b, err := s.st.GetBlob(ctx, blobID)
	if err != nil {
		return nil, 0, err
	}
	if b.RecordID != recordID || b.State != store.BlobComplete {
		return nil, 0, store.ErrNotFound
	}
	f, err := os.Open(s.blobPath(blobID))
	if err != nil {
		return nil, 0, err
	}
	return f, b.Size, nil
}
