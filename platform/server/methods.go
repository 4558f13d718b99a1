package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"dicomgate/platform/store"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// Method is one XML API method version.
type Method struct {
	Name    string
	Version int
	// ResponseNamespace is the namespace of the response's wc:info element.
	ResponseNamespace string
	// Anonymous methods carry header/app-id instead of an authenticated
	// session and no HMAC (CreateAuthenticatedSessionToken).
	Anonymous bool
	// Record methods need header/record-id naming a record the calling
	// application is authorized for.
	Record bool
	// Handle runs the method. It returns the response info value (nil for
	// none) or an error; a *wire.Error reaches the caller as is, any other
	// error is mapped by statusOf.
	Handle func(ctx context.Context, c *Call) (any, error)
}

type methodKey struct {
	name    string
	version int
}

// Call is one authenticated method call.
type Call struct {
	Request *wire.Request
	// AppID is the calling application (from the session, or header/app-id
	// for anonymous methods).
	AppID string
	// RecordID is the authorized record of a Record method.
	RecordID string
	// Now is the time the call is processed.
	Now time.Time
}

// DecodeInfo decodes the request's info element into v (INVALID_XML on failure).
func (c *Call) DecodeInfo(v any) error { return wire.UnmarshalInfo(c.Request.InfoRaw, v) }

// Register adds a method version. Registering the same name and version
// twice is an error.
func (s *Server) Register(m Method) error {
	if m.Name == "" || m.Version <= 0 || m.Handle == nil {
		return fmt.Errorf("server: method %q v%d is incomplete", m.Name, m.Version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := methodKey{m.Name, m.Version}
	if _, dup := s.methods[k]; dup {
		return fmt.Errorf("server: method %s v%d registered twice", m.Name, m.Version)
	}
	s.methods[k] = m
	return nil
}

func (s *Server) lookup(name string, version int) (Method, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if m, ok := s.methods[methodKey{name, version}]; ok {
		return m, nil
	}
	var versions []string
	for k := range s.methods {
		if k.name == name {
			versions = append(versions, fmt.Sprint(k.version))
		}
	}
	if len(versions) == 0 {
		return Method{}, wire.Errorf(wire.BadMethod, "no method %q", name)
	}
	sort.Strings(versions)
	return Method{}, wire.Errorf(wire.BadMethod, "method %s has no version %d (versions: %s)", name, version, strings.Join(versions, ", "))
}

func (s *Server) serveXMLAPI(w http.ResponseWriter, r *http.Request) {
	// Date is the platform's clock when the request arrived, before the
	// method ran: clients take it as the lower bound of their next poll
	// (GetAuthorizedConnectRequests), which their own clock cannot be.
	w.Header().Set("Date", s.cfg.Now().UTC().Format(http.TimeFormat))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes))
	var resp []byte
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			resp = wire.MarshalError(wire.Errorf(wire.RequestTooLong, "request longer than %d bytes", s.cfg.MaxRequestBytes))
		} else {
			resp = wire.MarshalError(wire.Errorf(wire.BadHTTP, "reading request: %v", err))
		}
	} else {
		resp = s.handle(r.Context(), body)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// handle runs one request and returns the response document.
func (s *Server) handle(ctx context.Context, body []byte) []byte {
	m, v, err := s.dispatch(ctx, body)
	if err == nil {
		var resp []byte
		if resp, err = wire.MarshalResponse(m.ResponseNamespace, v); err == nil {
			return resp
		}
	}
	e := s.statusOf(err)
	if e.Code == wire.Failed {
		s.log.Error("platform method failed", "method", m.Name, "err", err)
	} else {
		s.log.Debug("platform method refused", "method", m.Name, "code", e.Code, "msg", e.Message)
	}
	return wire.MarshalError(e)
}

func (s *Server) dispatch(ctx context.Context, body []byte) (Method, any, error) {
	req, err := wire.ParseRequest(body)
	if err != nil {
		return Method{}, nil, err
	}
	h := &req.Header
	m, err := s.lookup(h.Method, h.MethodVersion)
	if err != nil {
		return Method{}, nil, err
	}
	if err := req.VerifyInfoHash(); err != nil {
		return m, nil, err
	}
	c := &Call{Request: req, Now: s.cfg.Now()}
	if m.Anonymous {
		if h.AppID == "" {
			return m, nil, wire.Errorf(wire.InvalidApp, "anonymous method %s needs header/app-id", m.Name)
		}
		c.AppID = h.AppID
	} else {
		if c.AppID, err = s.authenticate(ctx, req, c.Now); err != nil {
			return m, nil, err
		}
	}
	if err := s.checkMsgTime(h, c.Now); err != nil {
		return m, nil, err
	}
	if m.Record {
		if h.RecordID == "" {
			return m, nil, wire.Errorf(wire.InvalidRecord, "method %s needs header/record-id", m.Name)
		}
		ok, err := s.st.IsAuthorized(ctx, c.AppID, h.RecordID)
		if err != nil {
			return m, nil, err
		}
		if !ok {
			return m, nil, wire.Errorf(wire.AccessDenied, "application %s is not authorized for record %s", c.AppID, h.RecordID)
		}
		c.RecordID = h.RecordID
	}
	v, err := m.Handle(ctx, c)
	return m, v, err
}

// authenticate checks the session token and the header HMAC and returns
// the session's application.
func (s *Server) authenticate(ctx context.Context, req *wire.Request, now time.Time) (string, error) {
	as := req.Header.AuthSession
	if as == nil || as.AuthToken == "" {
		return "", wire.Errorf(wire.InvalidToken, "request has no auth-session/auth-token")
	}
	se, err := s.st.Session(ctx, sha256.Sum256([]byte(as.AuthToken)))
	if errors.Is(err, store.ErrNotFound) {
		return "", wire.Errorf(wire.InvalidToken, "unknown authenticated session token")
	}
	if err != nil {
		return "", err
	}
	if !now.Before(se.Expires) {
		return "", wire.Errorf(wire.AuthenticatedSessionTokenExpired, "session expired at %s", se.Expires.Format(time.RFC3339))
	}
	if err := req.VerifyHMAC(se.SharedSecret); err != nil {
		return "", err
	}
	return se.AppID, nil
}

// checkMsgTime bounds replay: msg-time must not be ahead of the server's
// clock by more than the skew, and msg-time+msg-ttl (msg-ttl capped) must
// not be behind it by more than the skew.
func (s *Server) checkMsgTime(h *wire.Header, now time.Time) error {
	if h.MsgTime.IsZero() {
		return wire.Errorf(wire.InvalidXML, "header has no msg-time")
	}
	if h.MsgTime.After(now.Add(s.cfg.ClockSkew)) {
		return wire.Errorf(wire.InvalidDatetime, "msg-time %s is in the future (server time %s)",
			h.MsgTime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	ttl := time.Duration(h.MsgTTL) * time.Second
	if ttl <= 0 || ttl > s.cfg.MaxMsgTTL {
		ttl = s.cfg.MaxMsgTTL
	}
	if now.After(h.MsgTime.Add(ttl + s.cfg.ClockSkew)) {
		return wire.Errorf(wire.RequestTimedOut, "msg-time %s plus msg-ttl %s has passed (server time %s)",
			h.MsgTime.UTC().Format(time.RFC3339), ttl, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// statusOf is the one place that maps errors to HealthVault status codes.
func (s *Server) statusOf(err error) *wire.Error {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, store.ErrVersionMismatch):
		return wire.Errorf(wire.VersionStampMismatch, "%v", err)
	case errors.Is(err, store.ErrNotFound):
		return wire.Errorf(wire.InvalidThing, "%v", err)
	case errors.Is(err, store.ErrExists):
		return wire.Errorf(wire.InvalidThing, "%v", err)
	case errors.Is(err, thing.ErrBadSignature):
		return wire.Errorf(wire.BadSig, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return wire.Errorf(wire.Failed, "request cancelled")
	}
	return wire.Errorf(wire.Failed, "internal error")
}

func (s *Server) builtinMethods() []Method {
	return []Method{
		{Name: "CreateAuthenticatedSessionToken", Version: 2, Anonymous: true,
			ResponseNamespace: wire.NSCreateAuthenticatedSessionToken2, Handle: s.createSession},
		{Name: "PutThings", Version: 2, Record: true, ResponseNamespace: wire.NSPutThings, Handle: s.putThings},
		{Name: "GetThings", Version: 3, Record: true, ResponseNamespace: wire.NSGetThings3, Handle: s.getThings},
		{Name: "RemoveThings", Version: 1, Record: true, ResponseNamespace: wire.NSRemoveThings, Handle: s.removeThings},
		{Name: "BeginPutBlob", Version: 1, Record: true, ResponseNamespace: wire.NSBeginPutBlob, Handle: s.beginPutBlob},
	}
}
