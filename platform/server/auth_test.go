package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dicomgate/platform/appcert"
	"dicomgate/platform/provision"
	"dicomgate/platform/server"
	"dicomgate/platform/wire"
)

type serverConfig = server.Config

// post sends a raw XML API request and parses the response.
func (e *env) post(body []byte) *wire.Response {
	e.t.Helper()
	resp, err := http.Post(e.http.URL+server.PathXMLAPI, "text/xml", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r, err := wire.ParseResponse(b)
	if err != nil {
		e.t.Fatalf("%v: %s", err, b)
	}
	return r
}

type castOpts struct {
	creds      *appcert.Credentials
	hash       crypto.Hash
	thumbprint string
	signWith   *rsa.PrivateKey
	at         time.Time
}

func castRequest(t testing.TB, o castOpts, msgTime time.Time) []byte {
	t.Helper()
	if o.hash == 0 {
		o.hash = crypto.SHA256
	}
	content, err := xml.Marshal(wire.CASTContent{AppID: o.creds.AppID, HMAC: wire.AlgHMACSHA256, SigningTime: o.at})
	if err != nil {
		t.Fatal(err)
	}
	var sum []byte
	dm, sm := wire.DigestSHA256, wire.SigRSASHA256
	if o.hash == crypto.SHA1 {
		s := sha1.Sum(content)
		sum, dm, sm = s[:], wire.DigestSHA1, wire.SigRSASHA1
	} else {
		s := sha256.Sum256(content)
		sum = s[:]
	}
	key := o.creds.Key
	if o.signWith != nil {
		key = o.signWith
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, o.hash, sum)
	if err != nil {
		t.Fatal(err)
	}
	thumb := o.thumbprint
	if thumb == "" {
		thumb = appcert.Thumbprint(o.creds.Cert)
	}
	info := fmt.Sprintf(`<info><auth-info><app-id>%s</app-id><credential><appserver2><sig digestMethod="%s" sigMethod="%s" thumbprint="%s">%s</sig>%s</appserver2></credential></auth-info></info>`,
		o.creds.AppID, dm, sm, thumb, base64.StdEncoding.EncodeToString(sig), content)
	body, err := wire.BuildRequest(wire.Header{Method: "CreateAuthenticatedSessionToken", MethodVersion: 2, AppID: o.creds.AppID,
		MsgTime: msgTime, MsgTTL: 1800, Version: "test"}, []byte(info), nil)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// session opens a session by hand and returns token and secret.
func (e *env) session() (string, []byte) {
	e.t.Helper()
	r := e.post(castRequest(e.t, castOpts{creds: e.creds, at: e.clock.Now()}, e.clock.Now()))
	if err := r.Err(); err != nil {
		e.t.Fatal(err)
	}
	var resp wire.CASTResponse
	if err := xml.Unmarshal(r.Info, &resp); err != nil {
		e.t.Fatal(err)
	}
	secret, _ := base64.StdEncoding.DecodeString(resp.SharedSecret)
	return resp.Token.Value, secret
}

const getInfo = `<info><group><filter><type-id>` + misType + `</type-id></filter><format><section>core</section><xml/></format></group></info>`

func TestAuthenticationRefusals(t *testing.T) {
	e := newEnv(t)
	token, secret := e.session()
	now := e.clock.Now()
	header := func(mutate func(*wire.Header)) wire.Header {
		h := wire.Header{Method: "GetThings", MethodVersion: 3, RecordID: e.record,
			AuthSession: &wire.AuthSession{AuthToken: token}, MsgTime: now, MsgTTL: 1800, Version: "test"}
		if mutate != nil {
			mutate(&h)
		}
		return h
	}
	build := func(h wire.Header, info string, key []byte) []byte {
		b, err := wire.BuildRequest(h, []byte(info), key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	otherKey, otherCert, err := appcert.Generate("other", time.Hour*24)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body func() []byte
		code wire.Code
	}{
		{"valid", func() []byte { return build(header(nil), getInfo, secret) }, wire.OK},
		{"bad HMAC", func() []byte { return build(header(nil), getInfo, []byte("not the shared secret")) }, wire.BadSig},
		{"no HMAC", func() []byte { return build(header(nil), getInfo, nil) }, wire.BadSig},
		{"wrong info-hash", func() []byte {
			b := build(header(nil), getInfo, secret)
			return bytes.Replace(b, []byte("<section>core</section>"), []byte("<section>tags</section>"), 1)
		}, wire.BadSig},
		{"stale msg-time", func() []byte {
			return build(header(func(h *wire.Header) { h.MsgTime = now.Add(-2 * time.Hour) }), getInfo, secret)
		}, wire.RequestTimedOut},
		{"future msg-time", func() []byte {
			return build(header(func(h *wire.Header) { h.MsgTime = now.Add(time.Hour) }), getInfo, secret)
		}, wire.InvalidDatetime},
		{"unknown token", func() []byte {
			return build(header(func(h *wire.Header) { h.AuthSession.AuthToken = "bm90IGEgdG9rZW4=" }), getInfo, secret)
		}, wire.InvalidToken},
		{"unauthorized record", func() []byte {
			return build(header(func(h *wire.Header) { h.RecordID = e.newRecord("dave", false) }), getInfo, secret)
		}, wire.AccessDenied},
		{"unknown method", func() []byte {
			return build(header(func(h *wire.Header) { h.Method = "GetEverything" }), getInfo, secret)
		}, wire.BadMethod},
		{"unknown version", func() []byte {
			return build(header(func(h *wire.Header) { h.MethodVersion = 9 }), getInfo, secret)
		}, wire.BadMethod},
		{"not XML", func() []byte { return []byte("<wc-request:request") }, wire.InvalidXML},
		{"DTD", func() []byte {
			return append([]byte(`<!DOCTYPE x [<!ENTITY a "b">]>`), build(header(nil), getInfo, secret)...)
		}, wire.InvalidXML},
		{"unknown certificate", func() []byte {
			return castRequest(t, castOpts{creds: &appcert.Credentials{AppID: e.creds.AppID, Key: otherKey, Cert: otherCert}, at: now}, now)
		}, wire.BadCert},
		{"session signature by another key", func() []byte {
			return castRequest(t, castOpts{creds: e.creds, signWith: otherKey, at: now}, now)
		}, wire.BadSig},
		{"session signature SHA-1", func() []byte { return castRequest(t, castOpts{creds: e.creds, hash: crypto.SHA1, at: now}, now) }, wire.OK},
		{"session for unknown app", func() []byte {
			return castRequest(t, castOpts{creds: &appcert.Credentials{AppID: "0d6f3c77-1111-4111-8111-111111111111", Key: e.creds.Key, Cert: e.creds.Cert}, at: now}, now)
		}, wire.InvalidApp},
		{"stale signing-time", func() []byte { return castRequest(t, castOpts{creds: e.creds, at: now.Add(-3 * time.Hour)}, now) }, wire.RequestTimedOut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.body())
			if r.Code != tc.code {
				t.Fatalf("code = %v (%s), want %v", r.Code, r.Message, tc.code)
			}
			if tc.code != wire.OK && strings.TrimSpace(r.Message) == "" {
				t.Fatal("refusal without a message")
			}
		})
	}

	t.Run("expired session", func(t *testing.T) {
		e.clock.Advance(4*time.Hour + time.Second)
		now := e.clock.Now()
		r := e.post(build(header(func(h *wire.Header) { h.MsgTime = now }), getInfo, secret))
		if r.Code != wire.AuthenticatedSessionTokenExpired {
			t.Fatalf("code = %v (%s)", r.Code, r.Message)
		}
	})
}

func TestRequestTooLong(t *testing.T) {
	e := newEnv(t, func(c *serverConfig) { c.MaxRequestBytes = 1024 })
	r := e.post(bytes.Repeat([]byte("x"), 2048))
	if r.Code != wire.RequestTooLong {
		t.Fatalf("code = %v", r.Code)
	}
}

func TestBootstrapIdempotent(t *testing.T) {
	e := newEnv(t)
	again, err := provision.BootstrapApp(context.Background(), e.store, filepath.Join(e.cfg.DataDir, "app"), "test gateway")
	if err != nil {
		t.Fatal(err)
	}
	if again.AppID != e.creds.AppID || !again.Cert.Equal(e.creds.Cert) {
		t.Fatal("second bootstrap made a new app")
	}
}
