package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // crypto.SHA1 of RSA-SHA1 appserver2 signatures
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"dicomgate/platform/store"
	"dicomgate/platform/wire"
)

// createSession is CreateAuthenticatedSessionToken v2 with an appserver2
// credential: the application proves possession of the key of a registered
// certificate by signing the content element; it gets a token and the
// shared secret that keys its request HMACs.
func (s *Server) createSession(ctx context.Context, c *Call) (any, error) {
	var req wire.CASTRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	cred := req.AuthInfo.Credential.AppServer2
	if cred == nil {
		return nil, wire.Errorf(wire.InvalidXML, "credential is not appserver2 (the only credential dicomgate accepts)")
	}
	appID := req.AuthInfo.AppID
	if appID != c.AppID || cred.Content.AppID != appID {
		return nil, wire.Errorf(wire.InvalidApp, "app-id differs between header (%s), auth-info (%s) and content (%s)", c.AppID, appID, cred.Content.AppID)
	}
	if _, err := s.st.GetApp(ctx, appID); errors.Is(err, store.ErrNotFound) {
		return nil, wire.Errorf(wire.InvalidApp, "no application %s", appID)
	} else if err != nil {
		return nil, err
	}
	if cred.Content.HMAC != wire.AlgHMACSHA256 {
		return nil, wire.Errorf(wire.InvalidXML, "hmac %q not supported (want %s)", cred.Content.HMAC, wire.AlgHMACSHA256)
	}
	st := cred.Content.SigningTime
	if st.After(c.Now.Add(s.cfg.ClockSkew)) || c.Now.After(st.Add(s.cfg.MaxMsgTTL+s.cfg.ClockSkew)) {
		return nil, wire.Errorf(wire.RequestTimedOut, "signing-time %s is outside the accepted window", st.UTC().Format(time.RFC3339))
	}
	thumb := strings.ToUpper(strings.TrimSpace(cred.Sig.Thumbprint))
	ac, err := s.st.AppCert(ctx, appID, thumb)
	if errors.Is(err, store.ErrNotFound) {
		return nil, wire.Errorf(wire.BadCert, "certificate %s is not registered for application %s", thumb, appID)
	} else if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(ac.DER)
	if err != nil {
		return nil, err
	}
	if c.Now.After(cert.NotAfter) || c.Now.Before(cert.NotBefore) {
		return nil, wire.Errorf(wire.BadCert, "certificate %s is not valid now (valid %s to %s)", thumb,
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, wire.Errorf(wire.BadCert, "certificate %s has no RSA key", thumb)
	}
	var h crypto.Hash
	switch {
	case cred.Sig.DigestMethod == wire.DigestSHA256 && cred.Sig.SigMethod == wire.SigRSASHA256:
		h = crypto.SHA256
	case cred.Sig.DigestMethod == wire.DigestSHA1 && cred.Sig.SigMethod == wire.SigRSASHA1:
		h = crypto.SHA1
	default:
		return nil, wire.Errorf(wire.InvalidSignatureAlgorithm, "digestMethod %q with sigMethod %q not supported (SHA256/RSA-SHA256 or SHA1/RSA-SHA1)",
			cred.Sig.DigestMethod, cred.Sig.SigMethod)
	}
	content := wire.FindRaw(c.Request.InfoRaw, "info", "auth-info", "credential", "appserver2", "content")
	if content == nil {
		return nil, wire.Errorf(wire.InvalidXML, "no appserver2/content element")
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred.Sig.Value))
	if err != nil {
		return nil, wire.Errorf(wire.BadSig, "sig is not base64")
	}
	d := h.New()
	d.Write(content)
	if err := rsa.VerifyPKCS1v15(pub, h, d.Sum(nil), sig); err != nil {
		return nil, wire.Errorf(wire.BadSig, "signature over content does not verify with certificate %s", thumb)
	}

	token, secret := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	tok := base64.StdEncoding.EncodeToString(token)
	se := store.Session{
		TokenHash:    sha256.Sum256([]byte(tok)),
		AppID:        appID,
		SharedSecret: secret,
		Created:      c.Now,
		Expires:      c.Now.Add(s.cfg.SessionTTL),
	}
	if err := s.st.CreateSession(ctx, se); err != nil {
		return nil, err
	}
	return &wire.CASTResponse{
		Token:        wire.SessionToken{Value: tok, AppID: appID, AppRecordAuthAction: "NoActionRequired"},
		SharedSecret: base64.StdEncoding.EncodeToString(secret),
	}, nil
}
