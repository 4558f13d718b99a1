package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"dicomgate/platform/blob"
	"dicomgate/platform/dopu"
	"dicomgate/platform/thing"
)

// rawInfo marshals as an <info> element holding Inner as is.
type rawInfo struct {
	Inner []byte `xml:",innerxml"`
}

func writeElem(b *bytes.Buffer, name, value string) {
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(value))
	b.WriteString("</" + name + ">")
}

// AllocatePackageID reserves the identity code of a package to be created
// later (AllocatePackageId), so the patient can get it at once.
func (c *Client) AllocatePackageID(ctx context.Context) (string, error) {
	var resp struct {
		IdentityCode string `xml:"identity-code"`
	}
	if err := c.Call(ctx, "AllocatePackageId", 1, "", nil, &resp); err != nil {
		return "", err
	}
	if resp.IdentityCode == "" {
		return "", errors.New("client: AllocatePackageId answered no identity-code")
	}
	return resp.IdentityCode, nil
}

// packageBlobParams is the BeginPutConnectPackageBlob response.
type packageBlobParams struct {
	URL           string           `xml:"blob-ref-url"`
	Encryption    string           `xml:"package-blob-chunk-encryption-algorithm"`
	PreChunkSize  int64            `xml:"blob-pre-encryption-chunk-size"`
	PostChunkSize int64            `xml:"blob-post-encryption-chunk-size"`
	MaxBlobSize   int64            `xml:"max-blob-size"`
	HashAlgorithm string           `xml:"blob-hash-algorithm"`
	HashParams    thing.HashParams `xml:"blob-hash-parameters"`
}

// UploadPackageBlob encrypts r chunk by chunk with key and streams it with
// BeginPutConnectPackageBlob; it returns what a thing inside the package
// needs to reference the blob (name/content-type supplied by caller),
// hash-info over the plaintext, content length. The blob's blob-ref-url
// must also go into ConnectPackage.StreamedBlobRefs. Only one chunk is in
// memory at a time.
func (c *Client) UploadPackageBlob(ctx context.Context, key *dopu.Key, name, contentType string, r io.Reader) (thing.Blob, error) {
	var p packageBlobParams
	if err := c.Call(ctx, "BeginPutConnectPackageBlob", 1, "", nil, &p); err != nil {
		return thing.Blob{}, err
	}
	if p.Encryption != "aes256" {
		return thing.Blob{}, fmt.Errorf("client: package blob encryption %q not supported", p.Encryption)
	}
	if p.HashAlgorithm != thing.HashAlgorithmSHA256Block || p.HashParams.BlockSize <= 0 {
		return thing.Blob{}, fmt.Errorf("client: package blob hash %q (block size %d) not supported", p.HashAlgorithm, p.HashParams.BlockSize)
	}
	if p.PreChunkSize <= 0 || p.PreChunkSize > dopu.MaxChunkSize || int64(dopu.PostEncryptionChunkSize(int(p.PreChunkSize))) != p.PostChunkSize {
		return thing.Blob{}, fmt.Errorf("client: package blob chunk sizes %d/%d do not match the SDK's chunk encryption", p.PreChunkSize, p.PostChunkSize)
	}
	enc, err := key.NewChunkEncrypter(r, int(p.PreChunkSize), nil)
	if err != nil {
		return thing.Blob{}, err
	}
	h := blob.NewHasher(p.HashParams.BlockSize)
	var n int64
	for {
		ch, err := enc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return thing.Blob{}, err
		}
		if ch.Offset+int64(len(ch.Ciphertext)) > p.MaxBlobSize {
			return thing.Blob{}, fmt.Errorf("%w (%d encrypted bytes)", ErrBlobTooLarge, p.MaxBlobSize)
		}
		h.Write(ch.Plaintext)
		n += int64(len(ch.Plaintext))
		if err := c.postChunk(ctx, p.URL, ch.Offset, ch.Ciphertext, ch.Last); err != nil {
			return thing.Blob{}, err
		}
	}
	if n == 0 {
		return thing.Blob{}, errors.New("client: empty blob (streamed blobs must have at least one byte)")
	}
	return thing.Blob{
		Info:          thing.BlobInfo{Name: name, ContentType: contentType, HashInfo: thing.SHA256BlockInfo(p.HashParams.BlockSize, base64.StdEncoding.EncodeToString(h.Sum(nil)))},
		ContentLength: &n,
		RefURL:        p.URL,
	}, nil
}

// ConnectPackage is a DOPU package to create. IdentityCode is optional (one
// from AllocatePackageID); Package is the sealed Password Protected
// Package; StreamedBlobRefs are the RefURLs of the blobs UploadPackageBlob
// returned for things inside the package.
type ConnectPackage struct {
	IdentityCode, FriendlyName, Question, ExternalID string
	Package                                          *dopu.Package
	StreamedBlobRefs                                 []string
}

// PackageThing returns the Password Protected Package thing of p: its
// data-xml and the ciphertext as the inline blob (empty name,
// application/octet-stream), with SHA256Block hash-info.
func PackageThing(p *dopu.Package) (*thing.Thing, error) {
	data, err := p.MarshalDataXML()
	if err != nil {
		return nil, err
	}
	h := blob.NewHasher(blob.DefaultBlockSize)
	h.Write(p.Ciphertext)
	n := int64(len(p.Ciphertext))
	t := &thing.Thing{Type: &thing.TypeID{ID: dopu.TypeID}}
	t.SetData(data)
	t.SetBlob(thing.Blob{
		Info:          thing.BlobInfo{Name: dopu.BlobName, ContentType: dopu.BlobContentType, HashInfo: thing.SHA256BlockInfo(blob.DefaultBlockSize, base64.StdEncoding.EncodeToString(h.Sum(nil)))},
		ContentLength: &n,
		Base64Data:    base64.StdEncoding.EncodeToString(p.Ciphertext),
	})
	return t, nil
}

// CreateConnectPackage creates the package (CreateConnectPackage v2) and
// returns its identity code.
func (c *Client) CreateConnectPackage(ctx context.Context, p ConnectPackage) (identityCode string, err error) {
	if p.Package == nil {
		return "", errors.New("client: ConnectPackage.Package is nil")
	}
	t, err := PackageThing(p.Package)
	if err != nil {
		return "", err
	}
	tb, err := t.Marshal()
	if err != nil {
		return "", err
	}
	// The thing goes in as the package element.
	tb = append(append([]byte("<package>"), bytes.TrimSuffix(bytes.TrimPrefix(tb, []byte("<thing>")), []byte("</thing>"))...), "</package>"...)
	var b bytes.Buffer
	if p.IdentityCode != "" {
		writeElem(&b, "identity-code", p.IdentityCode)
	}
	writeElem(&b, "friendly-name", p.FriendlyName)
	writeElem(&b, "question", p.Question)
	writeElem(&b, "external-id", p.ExternalID)
	b.Write(tb)
	if len(p.StreamedBlobRefs) > 0 {
		b.WriteString("<streamed-package-blobs>")
		for _, u := range p.StreamedBlobRefs {
			writeElem(&b, "blob-in-package-ref-url", u)
		}
		b.WriteString("</streamed-package-blobs>")
	}
	var resp struct {
		IdentityCode string `xml:"identity-code"`
	}
	if err := c.Call(ctx, "CreateConnectPackage", 2, "", &rawInfo{Inner: b.Bytes()}, &resp); err != nil {
		return "", err
	}
	return resp.IdentityCode, nil
}

// DeletePendingConnectPackage deletes the app's pending package with the
// identity code or, when identityCode is "", those with the external id.
func (c *Client) DeletePendingConnectPackage(ctx context.Context, identityCode, externalID string) error {
	var b bytes.Buffer
	if identityCode != "" {
		writeElem(&b, "identity-code", identityCode)
	} else {
		writeElem(&b, "external-id", externalID)
	}
	return c.Call(ctx, "DeletePendingConnectPackage", 1, "", &rawInfo{Inner: b.Bytes()}, nil)
}

// UpdateExternalID changes the external id of the package or connect
// request with the identity code or, when identityCode is "", of those
// with oldExternalID.
func (c *Client) UpdateExternalID(ctx context.Context, identityCode, oldExternalID, newExternalID string) error {
	var b bytes.Buffer
	if identityCode != "" {
		writeElem(&b, "identity-code", identityCode)
	} else {
		writeElem(&b, "old-external-id", oldExternalID)
	}
	writeElem(&b, "new-external-id", newExternalID)
	return c.Call(ctx, "UpdateExternalId", 1, "", &rawInfo{Inner: b.Bytes()}, nil)
}

// CreateConnectRequest creates a Patient Connect request and returns its
// identity code. callbackURL may be "".
func (c *Client) CreateConnectRequest(ctx context.Context, friendlyName, question, answer, externalID, callbackURL string) (identityCode string, err error) {
	var b bytes.Buffer
	writeElem(&b, "friendly-name", friendlyName)
	writeElem(&b, "question", question)
	writeElem(&b, "answer", answer)
	writeElem(&b, "external-id", externalID)
	if callbackURL != "" {
		writeElem(&b, "call-back-url", callbackURL)
	}
	var resp struct {
		IdentityCode string `xml:"identity-code"`
	}
	if err := c.Call(ctx, "CreateConnectRequest", 1, "", &rawInfo{Inner: b.Bytes()}, &resp); err != nil {
		return "", err
	}
	return resp.IdentityCode, nil
}

// ConnectRequest is an authorized connect request: the person and record
// the patient chose for the application's external id.
type ConnectRequest struct {
	PersonID, RecordID, AppID, ExternalID string
	// Authorized is the lower bound to ask from next time. The wire format
	// carries no per-request time, so it is the platform's clock when it
	// received the first call of the listing (the response's Date header,
	// whole seconds rounded down), or the client's clock when the
	// response has no Date. The platform filters on its own timestamps,
	// so the client's clock would lose authorizations to skew; and a
	// validation committed just after the listing may carry an earlier
	// time. Callers should therefore ask from Authorized minus a safety
	// margin (an overlap) and treat requests seen twice as the same.
	Authorized time.Time
}

// GetAuthorizedConnectRequests returns the requests authorized since the
// given time (zero: all retained), following resume keys across pages.
// See ConnectRequest.Authorized for the time to ask from next.
func (c *Client) GetAuthorizedConnectRequests(ctx context.Context, since time.Time) ([]ConnectRequest, error) {
	asked := c.cfg.Now().UTC()
	var out []ConnectRequest
	for page := 0; ; page++ {
		if page > 100000 {
			return nil, errors.New("client: GetAuthorizedConnectRequests does not end")
		}
		var b bytes.Buffer
		if !since.IsZero() {
			writeElem(&b, "authorized-connect-requests-since", since.UTC().Format(time.RFC3339Nano))
		}
		var info any
		if b.Len() > 0 {
			info = &rawInfo{Inner: b.Bytes()}
		}
		var resp struct {
			ResumeKey *time.Time `xml:"resume-key"`
			Requests  []struct {
				PersonID   string `xml:"person-id"`
				RecordID   string `xml:"record-id"`
				AppID      string `xml:"app-id"`
				ExternalID string `xml:"external-id"`
			} `xml:"connect-request"`
		}
		var at time.Time
		if err := c.call(ctx, "GetAuthorizedConnectRequests", 1, "", info, &resp, &at); err != nil {
			return nil, err
		}
		if page == 0 && !at.IsZero() {
			asked = at
		}
		for _, r := range resp.Requests {
			out = append(out, ConnectRequest{PersonID: r.PersonID, RecordID: r.RecordID, AppID: r.AppID, ExternalID: r.ExternalID, Authorized: asked})
		}
		if resp.ResumeKey == nil {
			return out, nil
		}
		if !resp.ResumeKey.After(since) {
			return nil, fmt.Errorf("client: resume-key %s does not advance past %s", resp.ResumeKey.Format(time.RFC3339Nano), since.Format(time.RFC3339Nano))
		}
		since = *resp.ResumeKey
	}
}

// DeletePendingConnectRequest deletes the app's pending connect request for
// the external id.
func (c *Client) DeletePendingConnectRequest(ctx context.Context, externalID string) error {
	var b bytes.Buffer
	writeElem(&b, "external-id", externalID)
	return c.Call(ctx, "DeletePendingConnectRequest", 1, "", &rawInfo{Inner: b.Bytes()}, nil)
}
