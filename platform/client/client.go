// Package client is a Go client of the HealthVault XML method API and blob
// streaming interface (SPEC §2–4) as dicomgate's platform serves them: it
// authenticates an application with CreateAuthenticatedSessionToken v2,
// renews the session by itself, signs every request with the session's
// HMAC, offers typed PutThings/GetThings/RemoveThings/BeginPutBlob calls,
// and streams blobs in chunks while computing their SHA256Block hash,
// retrying with backoff and resuming from the last acknowledged byte.
package client

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
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"dicomgate/platform/appcert"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// Config configures a Client. Zero values take the defaults in the comments.
type Config struct {
	// URL is the platform's base URL (scheme://host[:port]). Required.
	URL string
	// Credentials authenticate the application. Required.
	Credentials *appcert.Credentials
	// HTTPClient sends requests (default: a client with a 2-minute timeout
	// per XML call; blob transfers are bounded by their context only).
	HTTPClient *http.Client
	// SignatureHash signs the session credential: crypto.SHA256 (default)
	// or crypto.SHA1 for HealthVault-era servers.
	SignatureHash crypto.Hash
	// MaxAttempts bounds tries of one call or chunk (5).
	MaxAttempts int
	// Backoff is the first retry delay, doubled each retry up to 10 s (200 ms).
	Backoff time.Duration
	// UploadConcurrency is how many blob chunks are in flight at once (3);
	// each holds one chunk in memory.
	UploadConcurrency int
	// MsgTTL is sent as msg-ttl (30 min).
	MsgTTL time.Duration
	// SessionLifetime is how long a session is used before it is renewed
	// proactively (3 h 50 min, under HealthVault's 4 h); an expired or
	// unknown token is renewed on demand too.
	SessionLifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Client talks to one platform as one application. It is safe for
// concurrent use.
type Client struct {
	cfg Config

	// chunkBufs keeps blob chunk buffers between uploads.
	chunkBufs sync.Pool

	mu      sync.Mutex
	token   string
	secret  []byte
	renewAt time.Time
}

// New returns a Client; it connects on the first call.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.Credentials == nil || cfg.Credentials.Key == nil || cfg.Credentials.Cert == nil {
		return nil, errors.New("client: URL and complete Credentials are required")
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.HTTPClient == nil {
		// Large socket buffers: a blob chunk is megabytes, and the default
		// 4 KiB write buffer costs a system call per 4 KiB.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.WriteBufferSize, tr.ReadBufferSize = 256<<10, 256<<10
		// Keep a connection for every chunk in flight (and the XML calls
		// beside them): the default keeps 2 idle per host, so with 3
		// chunks in flight one connection was closed and dialled again
		// after nearly every chunk.
		tr.MaxIdleConnsPerHost = max(cfg.UploadConcurrency, 3) + 2
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	if cfg.SignatureHash == 0 {
		cfg.SignatureHash = crypto.SHA256
	}
	if cfg.SignatureHash != crypto.SHA256 && cfg.SignatureHash != crypto.SHA1 {
		return nil, fmt.Errorf("client: signature hash %v not supported", cfg.SignatureHash)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	if cfg.UploadConcurrency <= 0 {
		cfg.UploadConcurrency = 3
	}
	if cfg.MsgTTL <= 0 {
		cfg.MsgTTL = 30 * time.Minute
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 3*time.Hour + 50*time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// AppID returns the application id the client authenticates as.
func (c *Client) AppID() string { return c.cfg.Credentials.AppID }

// session returns a valid token and secret, creating a session if needed.
func (c *Client) session(ctx context.Context) (string, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.cfg.Now().Before(c.renewAt) {
		return c.token, c.secret, nil
	}
	var resp wire.CASTResponse
	if err := c.do(ctx, "CreateAuthenticatedSessionToken", 2, "", nil, c.castInfo, &resp, nil); err != nil {
		return "", nil, fmt.Errorf("client: create session: %w", err)
	}
	secret, err := base64.StdEncoding.DecodeString(resp.SharedSecret)
	if err != nil || resp.Token.Value == "" {
		return "", nil, errors.New("client: create session: malformed token or shared secret")
	}
	c.token, c.secret, c.renewAt = resp.Token.Value, secret, c.cfg.Now().Add(c.cfg.SessionLifetime)
	return c.token, c.secret, nil
}

func (c *Client) dropSession(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token, c.secret = "", nil
	}
}

// castInfo builds the CreateAuthenticatedSessionToken v2 info: the content
// element, signed over its exact bytes with the application's key.
func (c *Client) castInfo() ([]byte, error) {
	cr := c.cfg.Credentials
	content, err := xml.Marshal(wire.CASTContent{AppID: cr.AppID, HMAC: wire.AlgHMACSHA256, SigningTime: c.cfg.Now().UTC().Truncate(time.Millisecond)})
	if err != nil {
		return nil, err
	}
	h := c.cfg.SignatureHash
	var sum []byte
	digestName, sigName := wire.DigestSHA256, wire.SigRSASHA256
	if h == crypto.SHA1 {
		s := sha1.Sum(content)
		sum, digestName, sigName = s[:], wire.DigestSHA1, wire.SigRSASHA1
	} else {
		s := sha256.Sum256(content)
		sum = s[:]
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, cr.Key, h, sum)
	if err != nil {
		return nil, fmt.Errorf("client: sign credential: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("<info><auth-info><app-id>")
	xml.EscapeText(&b, []byte(cr.AppID))
	b.WriteString("</app-id><credential><appserver2>")
	fmt.Fprintf(&b, `<sig digestMethod="%s" sigMethod="%s" thumbprint="%s">%s</sig>`,
		digestName, sigName, appcert.Thumbprint(cr.Cert), base64.StdEncoding.EncodeToString(sig))
	b.Write(content)
	b.WriteString("</appserver2></credential></auth-info></info>")
	return b.Bytes(), nil
}

// Call invokes method (at version) on recordID ("" for none) with info (a
// value marshaled as the info element's children, or nil) and decodes the
// response info into out (nil to ignore). A failed call returns a
// *wire.Error with the platform's status code and message.
func (c *Client) Call(ctx context.Context, method string, version int, recordID string, info, out any) error {
	return c.call(ctx, method, version, recordID, info, out, nil)
}

// call is Call; when at is not nil it receives the platform's time from
// the response's Date header (zero when the response has none).
func (c *Client) call(ctx context.Context, method string, version int, recordID string, info, out any, at *time.Time) error {
	infoBytes, err := wire.MarshalInfo(info)
	if err != nil {
		return err
	}
	for renewed := false; ; renewed = true {
		token, secret, err := c.session(ctx)
		if err != nil {
			return err
		}
		auth := &authn{token: token, secret: secret}
		err = c.do(ctx, method, version, recordID, auth, func() ([]byte, error) { return infoBytes, nil }, out, at)
		code := wire.CodeOf(err)
		if !renewed && (code == wire.InvalidToken || code == wire.AuthenticatedSessionTokenExpired) {
			c.dropSession(token)
			continue
		}
		return err
	}
}

type authn struct {
	token  string
	secret []byte
}

// do sends one method call (retrying transport failures with backoff for
// methods that are safe to repeat) and decodes the response.
func (c *Client) do(ctx context.Context, method string, version int, recordID string, a *authn, info func() ([]byte, error), out any, at *time.Time) error {
	attempts := c.cfg.MaxAttempts
	if method == "PutThings" {
		// A new thing sent twice would be created twice; updates are
		// protected by their version stamp but share the method.
		attempts = 1
	}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, backoff(c.cfg.Backoff, attempt)); err != nil {
				return err
			}
		}
		body, err := info()
		if err != nil {
			return err
		}
		h := wire.Header{
			Method: method, MethodVersion: version, RecordID: recordID,
			MsgTime: c.cfg.Now().UTC().Truncate(time.Millisecond), MsgTTL: int(c.cfg.MsgTTL.Seconds()), Version: wire.Version,
		}
		var secret []byte
		if a == nil {
			h.AppID = c.cfg.Credentials.AppID
		} else {
			h.AuthSession = &wire.AuthSession{AuthToken: a.token}
			secret = a.secret
		}
		reqBody, err := wire.BuildRequest(h, body, secret)
		if err != nil {
			return err
		}
		respBody, status, date, err := c.post(ctx, reqBody)
		if at != nil {
			*at = date
		}
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if status >= 500 {
			lastErr = fmt.Errorf("client: %s: HTTP %d", method, status)
			continue
		}
		resp, err := wire.ParseResponse(respBody)
		if err != nil {
			return fmt.Errorf("client: %s: HTTP %d: %w", method, status, err)
		}
		if err := resp.Err(); err != nil {
			return err
		}
		if out != nil {
			if resp.Info == nil {
				return fmt.Errorf("client: %s: response has no info", method)
			}
			if err := xml.Unmarshal(resp.Info, out); err != nil {
				return fmt.Errorf("client: %s: decode response: %w", method, err)
			}
		}
		return nil
	}
	return fmt.Errorf("client: %s failed after %d attempts: %w", method, attempts, lastErr)
}

// maxResponseBytes bounds an XML API response the client reads.
const maxResponseBytes = 256 << 20

// post sends one request and returns the response body, its status and
// the time of its Date header (zero when absent or malformed).
func (c *Client) post(ctx context.Context, body []byte) ([]byte, int, time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+"/platform/wildcat.ashx", bytes.NewReader(body))
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	defer resp.Body.Close()
	date, derr := http.ParseTime(resp.Header.Get("Date"))
	if derr != nil {
		date = time.Time{}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	return b, resp.StatusCode, date.UTC(), err
}

func backoff(base time.Duration, attempt int) time.Duration {
	d := base << (attempt - 1)
	if d > 10*time.Second || d <= 0 {
		d = 10 * time.Second
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// PutThings creates or updates things in a record and returns their new
// keys, in order.
func (c *Client) PutThings(ctx context.Context, recordID string, things ...*thing.Thing) ([]thing.Key, error) {
	var resp wire.PutThingsResponse
	if err := c.Call(ctx, "PutThings", 2, recordID, &wire.PutThingsRequest{Things: things}, &resp); err != nil {
		return nil, err
	}
	if len(resp.Keys) != len(things) {
		return nil, fmt.Errorf("client: PutThings answered %d keys for %d things", len(resp.Keys), len(things))
	}
	return resp.Keys, nil
}

// GetThings runs GetThings v3 groups against a record.
func (c *Client) GetThings(ctx context.Context, recordID string, groups ...wire.ThingRequestGroup) ([]wire.ThingResponseGroup, error) {
	var resp wire.GetThingsResponse
	if err := c.Call(ctx, "GetThings", 3, recordID, &wire.GetThingsRequest{Groups: groups}, &resp); err != nil {
		return nil, err
	}
	return resp.Groups, nil
}

// RemoveThings removes things (each at its current version) from a record.
func (c *Client) RemoveThings(ctx context.Context, recordID string, keys ...thing.Key) error {
	return c.Call(ctx, "RemoveThings", 1, recordID, &wire.RemoveThingsRequest{Keys: keys}, nil)
}

// StudyQuery returns the GetThings group the medical imaging seed uses to
// find a study by its Study Instance UID (typeID is the MIS type id), with
// core, xml, blob payload and signatures.
func StudyQuery(typeID, studyInstanceUID string) wire.ThingRequestGroup {
	return wire.ThingRequestGroup{
		Filters: []wire.ThingFilter{{
			TypeIDs: []string{typeID},
			States:  []string{thing.StateActive},
			XPath:   `/thing/data-xml/medical-image-study/study-instance-uid[.="` + studyInstanceUID + `"]`,
		}},
		Format: wire.ThingFormat{
			Sections: []string{wire.SectionCore, wire.SectionBlobPayload, wire.SectionDigitalSignatures},
			XML:      []string{""},
		},
	}
}
