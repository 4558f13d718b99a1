package server

// Drop-off/pick-up (SPEC §6): AllocatePackageId v1, CreateConnectPackage v2,
// BeginPutConnectPackageBlob v1 and DeletePendingConnectPackage v1, the
// upload of a package's encrypted streamed blobs, and the pick-up that
// decrypts a package with the patient's answer into a record.
//
// Streamed blobs inside a package work as the HealthVault .NET SDK did it
// (Microsoft.Health/BlobStream.cs and Microsoft.Health/Package/ConnectPackageHelper.cs
// in microsoft/healthvault-dotnetstandard-sdk):
//
//  1. BeginPutConnectPackageBlob (no record) answers a blob-ref-url and the
//     pre- and post-encryption chunk sizes. The client cuts the plaintext
//     into pre-size chunks, hashes them (SHA256Block, block size = the
//     blob-hash-parameters block size = the pre-encryption chunk size),
//     encrypts each chunk on its own with the package key (dopu/chunk.go)
//     and POSTs chunk i at Content-Range offset i*post (encrypted bytes),
//     the last with x-hv-blob-complete.
//  2. The blob in the thing inside the package carries that same URL as its
//     blob-ref-url (BlobStream sets Blob.Url to the BeginPutConnectPackageBlob
//     URL), with the plaintext content-length and the plaintext hash-info.
//     The thing is then encrypted into the package like any other.
//  3. CreateConnectPackage lists every such URL again, in the clear, in
//     streamed-package-blobs/blob-in-package-ref-url (ConnectPackageHelper
//     collects the Url of every streamed blob of the package's items), so
//     that the platform can tie the uploaded ciphertext to the package
//     without being able to read the package.
//  4. At pick-up the platform decrypts the package, finds each thing's
//     blob-ref-url among the package's blobs (by the blob id inside the
//     URL's signed token; the token may have expired by then), decrypts the
//     blob chunk by chunk into a new blob of the record, and checks the
//     plaintext content-length and SHA256Block hash against the thing.
//
// The platform keeps only ciphertext: the package's encrypted inline blob
// and the encrypted chunks. The answer is never stored; a wrong one counts
// towards the lock-out.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"dicomgate/platform/blob"
	"dicomgate/platform/dopu"
	"dicomgate/platform/store"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// ConnectConfig holds the DOPU and Patient Connect rules. Zero values take
// the defaults in the comments (HealthVault's).
type ConnectConfig struct {
	// PackageTTL is how long a package can be picked up (4 weeks).
	PackageTTL time.Duration
	// RequestTTL is how long an unanswered connect request lives (4 weeks).
	RequestTTL time.Duration
	// ValidatedRetention is how long a validated connect request stays
	// retrievable by GetAuthorizedConnectRequests (90 days).
	ValidatedRetention time.Duration
	// MaxWrongAnswers locks a package or request (3).
	MaxWrongAnswers int
	// AuthorizedPageSize is how many connect requests one
	// GetAuthorizedConnectRequests response holds (100).
	AuthorizedPageSize int
}

func (c ConnectConfig) withDefaults() ConnectConfig {
	if c.PackageTTL <= 0 {
		c.PackageTTL = 28 * 24 * time.Hour
	}
	if c.RequestTTL <= 0 {
		c.RequestTTL = 28 * 24 * time.Hour
	}
	if c.ValidatedRetention <= 0 {
		c.ValidatedRetention = 90 * 24 * time.Hour
	}
	if c.MaxWrongAnswers <= 0 {
		c.MaxWrongAnswers = 3
	}
	if c.AuthorizedPageSize <= 0 {
		c.AuthorizedPageSize = 100
	}
	return c
}

// Response namespaces of the DOPU and Patient Connect methods.
const (
	nsAllocatePackageID            = wire.ResponseNamespacePrefix + "AllocatePackageId"
	nsCreateConnectPackage         = wire.ResponseNamespacePrefix + "CreateConnectPackage"
	nsBeginPutConnectPackageBlob   = wire.ResponseNamespacePrefix + "BeginPutConnectPackageBlob"
	nsCreateConnectRequest         = wire.ResponseNamespacePrefix + "CreateConnectRequest"
	nsGetAuthorizedConnectRequests = wire.ResponseNamespacePrefix + "GetAuthorizedConnectRequests"
)

func (s *Server) connectMethods() []Method {
	return []Method{
		{Name: "AllocatePackageId", Version: 1, ResponseNamespace: nsAllocatePackageID, Handle: s.allocatePackageID},
		{Name: "CreateConnectPackage", Version: 2, ResponseNamespace: nsCreateConnectPackage, Handle: s.createConnectPackage},
		{Name: "BeginPutConnectPackageBlob", Version: 1, ResponseNamespace: nsBeginPutConnectPackageBlob, Handle: s.beginPutConnectPackageBlob},
		{Name: "DeletePendingConnectPackage", Version: 1, Handle: s.deletePendingConnectPackage},
		{Name: "UpdateExternalId", Version: 1, Handle: s.updateExternalID},
		{Name: "CreateConnectRequest", Version: 1, ResponseNamespace: nsCreateConnectRequest, Handle: s.createConnectRequest},
		{Name: "GetAuthorizedConnectRequests", Version: 1, ResponseNamespace: nsGetAuthorizedConnectRequests, Handle: s.getAuthorizedConnectRequests},
		{Name: "DeletePendingConnectRequest", Version: 1, Handle: s.deletePendingConnectRequest},
	}
}

// Identity codes: 20 letters from a consonant alphabet in 5 groups of 4.
const (
	codeAlphabet = "BCDFGHJKLMNPQRSTVWXYZ"
	codeLetters  = 20
)

// newIdentityCode draws a code from crypto/rand (rejection sampling keeps
// every letter equally likely: 21 letters, about 88 bits per code).
func newIdentityCode() (string, error) {
	var b strings.Builder
	buf := make([]byte, 32)
	n := 0
	for n < codeLetters {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, x := range buf {
			if n == codeLetters {
				break
			}
			if int(x) >= 256-256%len(codeAlphabet) {
				continue
			}
			if n > 0 && n%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(codeAlphabet[int(x)%len(codeAlphabet)])
			n++
		}
	}
	return b.String(), nil
}

// NormalizeIdentityCode returns the canonical form of a typed code
// (upper case, hyphenated groups of 4), accepting spaces, lower case and
// missing or extra hyphens. ok is false if it cannot be a code.
func NormalizeIdentityCode(typed string) (code string, ok bool) {
	if len(typed) > 200 {
		return "", false
	}
	var letters []byte
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ' || r == '\t' || r == '\u00a0':
			continue
		case r < 128 && strings.IndexByte(codeAlphabet, byte(r)) >= 0:
			letters = append(letters, byte(r))
		default:
			return "", false
		}
	}
	if len(letters) != codeLetters {
		return "", false
	}
	var b strings.Builder
	for i, c := range letters {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// reserveCode draws codes until one is free (a collision is astronomically
// unlikely, but uniqueness is the store's to guarantee).
func (s *Server) reserveCode(ctx context.Context, now time.Time) (string, error) {
	for range 5 {
		code, err := newIdentityCode()
		if err != nil {
			return "", err
		}
		err = s.st.ReserveIdentityCode(ctx, code, now)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		return code, err
	}
	return "", errors.New("server: no free identity code after 5 draws")
}

// identityCodeInfo is the info of the AllocatePackageId, CreateConnectPackage
// and CreateConnectRequest responses.
type identityCodeInfo struct {
	IdentityCode string `xml:"identity-code"`
}

func (s *Server) allocatePackageID(ctx context.Context, c *Call) (any, error) {
	code, err := s.reserveCode(ctx, c.Now)
	if err != nil {
		return nil, err
	}
	p := store.ConnectPackage{IdentityCode: code, AppID: c.AppID, State: store.PackageAllocated,
		Created: c.Now, Expires: c.Now.Add(s.cfg.Connect.PackageTTL)}
	if err := s.st.CreatePackage(ctx, p); err != nil {
		return nil, err
	}
	return &identityCodeInfo{IdentityCode: code}, nil
}

// CreateConnectPackageRequest is the info of CreateConnectPackage v2
// (method-createconnectpackage2.xsd).
type CreateConnectPackageRequest struct {
	IdentityCode string `xml:"identity-code,omitempty"`
	FriendlyName string `xml:"friendly-name"`
	Question     string `xml:"question"`
	ExternalID   string `xml:"external-id"`
	// Package is the content of the package element (a Thing2 named
	// "package", which thing.Thing, named "thing", cannot decode directly).
	Package *struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"package"`
	// StreamedBlobs lists blob-in-package-ref-url elements.
	StreamedBlobs *StreamedPackageBlobs `xml:"streamed-package-blobs,omitempty"`
}

// StreamedPackageBlobs is streamed-package-blobs.
type StreamedPackageBlobs struct {
	URLs []string `xml:"blob-in-package-ref-url"`
}

// Bounds of the text fields of packages and connect requests.
const maxTextField = 1024

func checkText(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return wire.Errorf(wire.InvalidXML, "%s is empty", name)
	}
	if len(v) > maxTextField {
		return wire.Errorf(wire.InvalidXML, "%s is longer than %d bytes", name, maxTextField)
	}
	return nil
}

func checkQuestion(q string) error {
	if strings.TrimSpace(q) == "" {
		return wire.Errorf(wire.InvalidVerificationQuestion, "the question is empty")
	}
	if len(q) > maxTextField {
		return wire.Errorf(wire.InvalidVerificationQuestion, "the question is longer than %d bytes", maxTextField)
	}
	return nil
}

func (s *Server) createConnectPackage(ctx context.Context, c *Call) (any, error) {
	var req CreateConnectPackageRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	if err := checkQuestion(req.Question); err != nil {
		return nil, err
	}
	if err := checkText("friendly-name", req.FriendlyName); err != nil {
		return nil, err
	}
	if err := checkText("external-id", req.ExternalID); err != nil {
		return nil, err
	}
	if req.Package == nil {
		return nil, wire.Errorf(wire.InvalidXML, "no package")
	}
	pt, err := thing.Unmarshal(append(append([]byte("<thing>"), req.Package.Inner...), "</thing>"...))
	if err != nil {
		return nil, wire.Errorf(wire.InvalidXML, "package: %v", err)
	}
	dataXML, ct, err := packageCiphertext(pt)
	if err != nil {
		return nil, err
	}
	p := store.ConnectPackage{AppID: c.AppID, ExternalID: req.ExternalID, FriendlyName: req.FriendlyName,
		Question: req.Question, State: store.PackagePending, DataXML: dataXML, Ciphertext: ct,
		Created: c.Now, Expires: c.Now.Add(s.cfg.Connect.PackageTTL)}
	if req.StreamedBlobs != nil {
		seen := map[string]bool{}
		for _, u := range req.StreamedBlobs.URLs {
			id, err := s.packageBlobOfURL(u, c.Now)
			if err != nil {
				return nil, err
			}
			if seen[id] {
				return nil, wire.Errorf(wire.InvalidBlobRefURL, "blob-in-package-ref-url listed twice")
			}
			seen[id] = true
			p.BlobIDs = append(p.BlobIDs, id)
		}
	}
	if req.IdentityCode != "" {
		code, ok := NormalizeIdentityCode(req.IdentityCode)
		if !ok {
			return nil, wire.Errorf(wire.InvalidIdentityCode, "identity-code is not a code this platform allocated")
		}
		p.IdentityCode = code
		err := s.st.FillPackage(ctx, p)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, wire.Errorf(wire.InvalidIdentityCode, "identity-code was not allocated by this application")
		case errors.Is(err, store.ErrPackageBlobUnavailable):
			return nil, wire.Errorf(wire.InvalidBlobRefURL, "a streamed package blob is incomplete, another application's or in another package")
		case errors.Is(err, store.ErrNotPending):
			return nil, wire.Errorf(wire.InvalidIdentityCode, "identity-code already has a package")
		case err != nil:
			return nil, err
		}
		return &identityCodeInfo{IdentityCode: code}, nil
	}
	if p.IdentityCode, err = s.reserveCode(ctx, c.Now); err != nil {
		return nil, err
	}
	if err := s.st.CreatePackage(ctx, p); errors.Is(err, store.ErrPackageBlobUnavailable) {
		return nil, wire.Errorf(wire.InvalidBlobRefURL, "a streamed package blob is incomplete, another application's or in another package")
	} else if err != nil {
		return nil, err
	}
	return &identityCodeInfo{IdentityCode: p.IdentityCode}, nil
}

// packageCiphertext checks the Password Protected Package thing and returns
// its normalized data-xml and its ciphertext (the inline blob).
func packageCiphertext(t *thing.Thing) ([]byte, []byte, error) {
	if t == nil {
		return nil, nil, wire.Errorf(wire.InvalidXML, "no package")
	}
	if t.Type == nil || !strings.EqualFold(strings.TrimSpace(t.Type.ID), dopu.TypeID) {
		return nil, nil, wire.Errorf(wire.InvalidThingType, "package is not a Password Protected Package (%s)", dopu.TypeID)
	}
	if len(t.Data) != 1 {
		return nil, nil, wire.Errorf(wire.InvalidXML, "package has %d data-xml elements, want 1", len(t.Data))
	}
	pkg, err := dopu.UnmarshalDataXML(t.Data[0].Inner)
	if err != nil {
		return nil, nil, wire.Errorf(wire.InvalidXML, "package: %v", err)
	}
	dataXML, err := pkg.MarshalDataXML() // refuses what pick-up could not open
	if err != nil {
		return nil, nil, wire.Errorf(wire.InvalidXML, "package: %v", err)
	}
	if t.BlobPayload == nil || len(t.BlobPayload.Blobs) != 1 {
		return nil, nil, wire.Errorf(wire.InvalidXML, "package needs exactly one blob (the encrypted things)")
	}
	b := &t.BlobPayload.Blobs[0]
	if b.RefURL != "" || b.Base64Data == "" {
		return nil, nil, wire.Errorf(wire.InvalidXML, "package data must be an inline (base64data) blob")
	}
	ct, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b.Base64Data), ""))
	if err != nil {
		return nil, nil, wire.Errorf(wire.InvalidXML, "package blob is not base64")
	}
	bs := 32
	if pkg.Algorithm == dopu.HMACSHA13DES {
		bs = 8
	}
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, nil, wire.Errorf(wire.InvalidXML, "package ciphertext of %d bytes is not whole %d-byte blocks", len(ct), bs)
	}
	if n := b.Length(); n >= 0 && n != int64(len(ct)) {
		return nil, nil, wire.Errorf(wire.InvalidThing, "package blob content-length %d, but %d bytes were sent", n, len(ct))
	}
	if hi := b.Info.HashInfo; hi != nil {
		if hi.Algorithm != thing.HashAlgorithmSHA256Block {
			return nil, nil, wire.Errorf(wire.InvalidBlobHashAlgorithm, "package blob hash algorithm %q", hi.Algorithm)
		}
		bsz := hi.BlockSize()
		if bsz <= 0 {
			bsz = blob.DefaultBlockSize
		}
		h := blob.NewHasher(bsz)
		h.Write(ct)
		if base64.StdEncoding.EncodeToString(h.Sum(nil)) != strings.TrimSpace(hi.Hash) {
			return nil, nil, wire.Errorf(wire.InvalidBlobHash, "package blob hash-info does not match its bytes")
		}
	}
	return dataXML, ct, nil
}

// tokenPackageWrite marks upload tokens of package blobs.
const tokenPackageWrite = "pw"

func (s *Server) packageBlobDir() string { return filepath.Join(s.cfg.DataDir, "package-blobs") }

func (s *Server) packageBlobPath(id string) string {
	return filepath.Join(s.packageBlobDir(), id[:2], id)
}

// packageChunkSizes are the plaintext and encrypted chunk sizes.
func (s *Server) packageChunkSizes() (pre, post int64) {
	pre = min(s.cfg.ChunkSize, dopu.MaxChunkSize)
	return pre, int64(dopu.PostEncryptionChunkSize(int(pre)))
}

// beginPutConnectPackageBlobResponse is response-beginputconnectpackageblob.xsd.
type beginPutConnectPackageBlobResponse struct {
	BlobRefURL          string           `xml:"blob-ref-url"`
	EncryptionAlgorithm string           `xml:"package-blob-chunk-encryption-algorithm"`
	PreChunkSize        int64            `xml:"blob-pre-encryption-chunk-size"`
	PostChunkSize       int64            `xml:"blob-post-encryption-chunk-size"`
	MaxBlobSize         int64            `xml:"max-blob-size"`
	HashAlgorithm       string           `xml:"blob-hash-algorithm"`
	HashParams          thing.HashParams `xml:"blob-hash-parameters"`
}

func (s *Server) beginPutConnectPackageBlob(ctx context.Context, c *Call) (any, error) {
	id := uuid.NewString()
	if err := createDurableFile(s.packageBlobPath(id)); err != nil {
		return nil, err
	}
	pre, post := s.packageChunkSizes()
	b := store.PackageBlob{ID: id, AppID: c.AppID, State: store.BlobUploading, PreChunkSize: pre, PostChunkSize: post,
		MaxSize: s.cfg.MaxBlobSize, Total: -1, Created: c.Now}
	if err := s.st.CreatePackageBlob(ctx, b); err != nil {
		return nil, err
	}
	u := s.blobURL(blobToken{Kind: tokenPackageWrite, BlobID: id, Expires: c.Now.Add(s.cfg.UploadTokenTTL).Unix()})
	return &beginPutConnectPackageBlobResponse{
		BlobRefURL:          u,
		EncryptionAlgorithm: "aes256",
		PreChunkSize:        pre,
		PostChunkSize:       post,
		MaxBlobSize:         s.cfg.MaxBlobSize,
		HashAlgorithm:       thing.HashAlgorithmSHA256Block,
		HashParams:          thing.HashParams{BlockSize: pre},
	}, nil
}

// packageBlobOfURL returns the package blob id a blob-in-package-ref-url
// names. Creating the package needs an unexpired URL.
func (s *Server) packageBlobOfURL(ref string, now time.Time) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", wire.Errorf(wire.InvalidBlobRefURL, "blob-in-package-ref-url is not a URL")
	}
	tok, err := s.parseToken(u.Query().Get(tokenParam), now)
	if err != nil {
		return "", wire.Errorf(wire.InvalidBlobRefURL, "blob-in-package-ref-url: %v", err)
	}
	if tok.Kind != tokenPackageWrite {
		return "", wire.Errorf(wire.InvalidBlobRefURL, "blob-in-package-ref-url is not from BeginPutConnectPackageBlob")
	}
	return tok.BlobID, nil
}

// servePackageBlobUpload receives encrypted chunks of a package blob. A
// chunk starts at a multiple of the post-encryption chunk size and is one
// or more whole encrypted chunks, or ends the blob. Chunks are only stored:
// the platform cannot decrypt them before pick-up.
func (s *Server) servePackageBlobUpload(w http.ResponseWriter, r *http.Request, tok blobToken) {
	ctx := r.Context()
	b, err := s.st.GetPackageBlob(ctx, tok.BlobID)
	if err != nil {
		s.blobLookupFailed(w, err)
		return
	}
	rng, complete, ok := chunkHeaders(w, r)
	if !ok {
		return
	}
	if rng != nil {
		if code, err := s.receivePackageChunk(ctx, b, *rng, r.Body); err != nil {
			s.refuseBlob(w, code, err)
			return
		}
	}
	if complete {
		if code, err := s.completePackageBlob(ctx, b.ID); err != nil {
			s.refuseBlob(w, code, err)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) receivePackageChunk(ctx context.Context, b store.PackageBlob, rng blob.ContentRange, body io.Reader) (int, error) {
	post := b.PostChunkSize
	switch {
	case b.State == store.BlobComplete:
		return http.StatusConflict, errors.New("blob is complete")
	case rng.Last >= b.MaxSize || rng.Total > b.MaxSize:
		return http.StatusRequestEntityTooLarge, fmt.Errorf("blob would exceed the maximum blob size of %d bytes", b.MaxSize)
	case rng.First%post != 0:
		return http.StatusBadRequest, fmt.Errorf("chunk starts at byte %d, not on an encrypted chunk boundary (multiple of %d)", rng.First, post)
	case rng.Len()%post != 0 && rng.Len()%32 != 0:
		return http.StatusBadRequest, fmt.Errorf("chunk of %d bytes is not whole 32-byte cipher blocks", rng.Len())
	case rng.Len()%post != 0 && rng.Total >= 0 && rng.Last+1 != rng.Total:
		return http.StatusBadRequest, fmt.Errorf("chunk of %d bytes is not whole encrypted chunks and does not end the blob", rng.Len())
	}
	if rng.Total >= 0 {
		if err := s.st.SetPackageBlobTotal(ctx, b.ID, rng.Total); errors.Is(err, store.ErrConflict) {
			return http.StatusConflict, fmt.Errorf("total length %d differs from the one announced before", rng.Total)
		} else if err != nil {
			return http.StatusInternalServerError, err
		}
	}
	have, err := s.st.PackageBlocks(ctx, b.ID, rng.First/post, rng.Last/post+1)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	fresh, code, err := s.writeChunk(s.packageBlobPath(b.ID), rng, post, have, body, false)
	if err != nil {
		return code, err
	}
	for _, blk := range fresh {
		if err := s.st.PutPackageBlock(ctx, b.ID, blk); errors.Is(err, store.ErrConflict) {
			return http.StatusConflict, fmt.Errorf("encrypted chunk %d was received before with other content", blk.Index)
		} else if err != nil {
			return http.StatusInternalServerError, err
		}
	}
	return 0, nil
}

func (s *Server) completePackageBlob(ctx context.Context, id string) (int, error) {
	b, err := s.st.GetPackageBlob(ctx, id)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if b.State == store.BlobComplete {
		return 0, nil
	}
	blocks, err := s.st.PackageBlocks(ctx, id, 0, -1)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	size, err := wholeBlocks(blocks, b.PostChunkSize, b.Total)
	if err != nil {
		return http.StatusBadRequest, err
	}
	// Verify the file holds what the chunk hashes say before the blob is
	// final: a resend never overwrites a recorded chunk (writeChunk), so a
	// mismatch means the file was damaged.
	f, err := os.Open(s.packageBlobPath(id))
	if err != nil {
		return http.StatusInternalServerError, err
	}
	defer f.Close()
	for _, blk := range blocks {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, blk.Index*b.PostChunkSize, blk.Length)); err != nil {
			return http.StatusInternalServerError, err
		}
		if !bytes.Equal(h.Sum(nil), blk.Hash[:]) {
			return http.StatusConflict, fmt.Errorf("encrypted chunk %d was overwritten with other content", blk.Index)
		}
	}
	if err := truncateDurably(s.packageBlobPath(id), size); err != nil {
		return http.StatusInternalServerError, err
	}
	if err := s.st.CompletePackageBlob(ctx, id, size, s.cfg.Now()); errors.Is(err, store.ErrConflict) {
		return http.StatusConflict, err
	} else if err != nil {
		return http.StatusInternalServerError, err
	}
	return 0, nil
}

// deletePendingConnectPackageRequest is method-deletependingconnectpackage.xsd.
type deletePendingConnectPackageRequest struct {
	IdentityCode string `xml:"identity-code"`
	ExternalID   string `xml:"external-id"`
}

func (s *Server) deletePendingConnectPackage(ctx context.Context, c *Call) (any, error) {
	var req deletePendingConnectPackageRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	code, err := codeOrExternalID(req.IdentityCode, "external-id", req.ExternalID)
	if err != nil {
		return nil, err
	}
	n, blobs, err := s.st.DeletePendingPackages(ctx, c.AppID, code, req.ExternalID)
	if err != nil {
		return nil, err
	}
	s.removePackageBlobFiles(blobs)
	if n == 0 {
		return nil, wire.Errorf(wire.InvalidIdentityCode, "no pending package of this application matches")
	}
	return nil, nil
}

// codeOrExternalID checks the choice of an identity-code or an external
// id (named extName) that selects a package or connect request: it returns
// the normalized code, or "" when the request names the external id.
func codeOrExternalID(typedCode, extName, ext string) (string, error) {
	if typedCode == "" {
		if strings.TrimSpace(ext) == "" {
			return "", wire.Errorf(wire.InvalidXML, "identity-code or %s is required", extName)
		}
		return "", nil
	}
	code, ok := NormalizeIdentityCode(typedCode)
	if !ok {
		return "", wire.Errorf(wire.InvalidIdentityCode, "identity-code is malformed")
	}
	return code, nil
}

func (s *Server) removePackageBlobFiles(ids []string) {
	for _, id := range ids {
		if err := os.Remove(s.packageBlobPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove package blob", "blob", id, "err", err)
		}
	}
}

// sweepConnect removes expired packages (with their blobs), package blobs
// no package took within BlobGrace, validated connect requests past their
// retention, and expired patient web sessions.
func (s *Server) sweepConnect(ctx context.Context) error {
	now := s.cfg.Now()
	cc := s.cfg.Connect
	expired, err := s.st.ExpiredPackages(ctx, now)
	if err != nil {
		return err
	}
	for _, p := range expired {
		_, blobs, err := s.st.DeletePendingPackages(ctx, p.AppID, p.IdentityCode, "")
		if err != nil {
			return err
		}
		s.removePackageBlobFiles(blobs)
	}
	orphans, err := s.st.UnreferencedPackageBlobs(ctx, now.Add(-s.cfg.BlobGrace))
	if err != nil {
		return err
	}
	for _, b := range orphans {
		if err := s.st.DeletePackageBlob(ctx, b.ID); err != nil {
			return err
		}
		s.removePackageBlobFiles([]string{b.ID})
	}
	if err := s.st.DeleteConnectRequestsBefore(ctx, now.Add(-cc.ValidatedRetention)); err != nil {
		return err
	}
	return s.st.DeleteExpiredWebSessions(ctx, now)
}

// Pick-up errors. The web pages and PickUp callers check them with errors.Is.
var (
	// ErrInvalidCode: no package or connect request has the code.
	ErrInvalidCode = errors.New("no package or connect request has this identity code")
	// ErrExpired: the package or connect request has expired.
	ErrExpired = errors.New("the package or connect request has expired")
	// ErrLocked: too many wrong answers.
	ErrLocked = errors.New("too many wrong answers; the code is locked")
	// ErrPickedUp: the package was picked up already.
	ErrPickedUp = errors.New("the package was picked up already")
	// ErrWrongAnswer: the answer is wrong (see WrongAnswerError).
	ErrWrongAnswer = errors.New("wrong answer")
	// ErrNotYourRecord: the record is not one of the person's.
	ErrNotYourRecord = errors.New("the record is not the person's")
)

// WrongAnswerError is a wrong answer with the tries left before the lock.
type WrongAnswerError struct{ TriesLeft int }

func (e *WrongAnswerError) Error() string {
	return fmt.Sprintf("wrong answer, %d tries left", e.TriesLeft)
}

// Unwrap makes errors.Is(err, ErrWrongAnswer) true.
func (e *WrongAnswerError) Unwrap() error { return ErrWrongAnswer }

// Challenge is what a patient sees after typing a code: whose it is and
// the question.
type Challenge struct {
	IdentityCode string
	FriendlyName string
	Question     string
	AppID        string
	AppName      string
	TriesLeft    int
}

func (s *Server) appName(ctx context.Context, id string) string {
	a, err := s.st.GetApp(ctx, id)
	if err != nil {
		return "the application"
	}
	return a.Name
}

// coded is what a patient reaches by typing an identity code, a DOPU
// package or a connect request, as far as answering its question goes.
type coded struct {
	IdentityCode string
	FriendlyName string
	Question     string
	AppID        string
	WrongAnswers int
}

// loadCoded normalizes the typed code and loads the item with it by get:
// ErrInvalidCode when the code is malformed or unknown, the error of state
// when the item cannot be answered in its state, ErrLocked when its tries
// are used up.
func loadCoded[T any](ctx context.Context, s *Server, typed string, get func(context.Context, string) (T, error),
	view func(T) coded, state func(T) error) (T, error) {
	code, ok := NormalizeIdentityCode(typed)
	if !ok {
		var zero T
		return zero, ErrInvalidCode
	}
	v, err := get(ctx, code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return v, ErrInvalidCode
	case err != nil:
		return v, err
	}
	if err := state(v); err != nil {
		return v, err
	}
	if view(v).WrongAnswers >= s.cfg.Connect.MaxWrongAnswers {
		return v, ErrLocked
	}
	return v, nil
}

// challengeOf loads the item with the typed code by load and returns what
// the patient sees of it.
func challengeOf[T any](ctx context.Context, s *Server, typed string, load func(context.Context, string) (T, error),
	view func(T) coded) (Challenge, error) {
	v, err := load(ctx, typed)
	if err != nil {
		return Challenge{}, err
	}
	c := view(v)
	return Challenge{IdentityCode: c.IdentityCode, FriendlyName: c.FriendlyName, Question: c.Question,
		AppID: c.AppID, AppName: s.appName(ctx, c.AppID), TriesLeft: s.cfg.Connect.MaxWrongAnswers - c.WrongAnswers}, nil
}

func packageCoded(p store.ConnectPackage) coded {
	return coded{IdentityCode: p.IdentityCode, FriendlyName: p.FriendlyName, Question: p.Question,
		AppID: p.AppID, WrongAnswers: p.WrongAnswers}
}

// loadPackage returns the pending package with the (typed) code.
func (s *Server) loadPackage(ctx context.Context, typed string) (store.ConnectPackage, error) {
	return loadCoded(ctx, s, typed, s.st.GetPackage, packageCoded, func(p store.ConnectPackage) error {
		switch {
		case p.State == store.PackageAllocated:
			return ErrInvalidCode // no data yet
		case p.State == store.PackagePickedUp:
			return ErrPickedUp
		case !s.cfg.Now().Before(p.Expires):
			return ErrExpired
		}
		return nil
	})
}

// PackageChallenge returns the friendly name and question of the package
// with the typed code (spaces, lower case and missing hyphens are fine).
func (s *Server) PackageChallenge(ctx context.Context, typed string) (Challenge, error) {
	return challengeOf(ctx, s, typed, s.loadPackage, packageCoded)
}

// UnlockedPackage is a package whose answer was right: it holds the
// derived key in memory only, so that the patient can choose a record
// without answering again. It is never persisted.
type UnlockedPackage struct {
	IdentityCode string
	key          *dopu.Key
}

// UnlockPackage derives the key of the package from answer and opens it,
// verifying its HMAC. A wrong answer is counted: *WrongAnswerError with the
// tries left, or ErrLocked on the last one.
func (s *Server) UnlockPackage(ctx context.Context, typed, answer string) (*UnlockedPackage, error) {
	p, err := s.loadPackage(ctx, typed)
	if err != nil {
		return nil, err
	}
	pkg, err := dopu.UnmarshalDataXML(p.DataXML)
	if err != nil {
		return nil, err
	}
	pkg.Ciphertext = p.Ciphertext
	// The try is taken before the answer is checked and given back when it
	// was right: checking first would let parallel answers all pass a
	// count that has not moved yet.
	t, err := s.takeTry(ctx, p.IdentityCode, s.st.TakePackageTry, s.st.ReturnPackageTry)
	if err != nil {
		return nil, err
	}
	key, err := dopu.DeriveKey(answer, pkg)
	if err == nil {
		_, err = key.Open(pkg)
	}
	if errors.Is(err, dopu.ErrWrongAnswer) {
		return nil, t.wrong()
	}
	t.giveBack(ctx)
	if err != nil {
		return nil, err
	}
	return &UnlockedPackage{IdentityCode: p.IdentityCode, key: key}, nil
}

// try is one taken try at an answer.
type try struct {
	s     *Server
	code  string
	count int
	back  func(context.Context, string) error
}

// takeTry takes a try at the answer of code with take; back gives it back.
func (s *Server) takeTry(ctx context.Context, code string, take func(context.Context, string, int) (int, error),
	back func(context.Context, string) error) (*try, error) {
	n, err := take(ctx, code, s.cfg.Connect.MaxWrongAnswers)
	switch {
	case errors.Is(err, store.ErrNoTriesLeft):
		return nil, ErrLocked
	case errors.Is(err, store.ErrNotPending), errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidCode
	case err != nil:
		return nil, err
	}
	return &try{s: s, code: code, count: n, back: back}, nil
}

// wrong keeps the try as a wrong answer: *WrongAnswerError with the
// tries left, or ErrLocked after the last one.
func (t *try) wrong() error {
	left := t.s.cfg.Connect.MaxWrongAnswers - t.count
	if left <= 0 {
		return ErrLocked
	}
	return &WrongAnswerError{TriesLeft: left}
}

// giveBack returns the try: the answer was right or was not checked.
func (t *try) giveBack(ctx context.Context) {
	if err := t.back(context.WithoutCancel(ctx), t.code); err != nil {
		t.s.log.Warn("give back a try at the answer", "err", err)
	}
}

// personRecord checks that recordID is one of personID's records.
func (s *Server) personRecord(ctx context.Context, personID, recordID string) (store.Record, error) {
	r, err := s.st.GetRecord(ctx, recordID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.PersonID != personID) {
		return r, ErrNotYourRecord
	}
	return r, err
}

// DeliverPackage writes the things of an unlocked package, with their
// blobs, into the person's record, once: the package is claimed first and
// marked picked up only after every thing was written. It returns the
// application's success message.
func (s *Server) DeliverPackage(ctx context.Context, u *UnlockedPackage, personID, recordID string) (string, error) {
	if _, err := s.personRecord(ctx, personID, recordID); err != nil {
		return "", err
	}
	p, err := s.loadPackage(ctx, u.IdentityCode)
	if err != nil {
		return "", err
	}
	now := s.cfg.Now()
	until := now.Add(15 * time.Minute)
	if err := s.st.ClaimPackage(ctx, p.IdentityCode, now, until); errors.Is(err, store.ErrNotPending) {
		return "", ErrPickedUp
	} else if err != nil {
		return "", err
	}
	// The things and the picked-up state are written in one transaction,
	// under this claim only: a crash in between cannot leave things that
	// a later pick-up writes again.
	if err := s.writePackage(ctx, p, u.key, recordID, until); err != nil {
		if errors.Is(err, store.ErrNotPending) {
			// The claim went stale and another pick-up took it over.
			return "", ErrPickedUp
		}
		if rerr := s.st.ReleasePackage(context.WithoutCancel(ctx), p.IdentityCode); rerr != nil {
			s.log.Warn("release package after failed pick-up", "err", rerr)
		}
		return "", err
	}
	s.removePickedUpBlobs(ctx, p)
	if err := s.st.AddAudit(ctx, store.AuditEvent{At: s.cfg.Now(), Action: "pickup", PersonID: personID, RecordID: recordID,
		AppID: p.AppID, Detail: p.FriendlyName}); err != nil {
		s.log.Warn("audit pick-up", "err", err)
	}
	return s.successMessage(ctx, p.AppID), nil
}

// removePickedUpBlobs drops the ciphertext of a picked-up package's blobs:
// the record has the plaintext now.
func (s *Server) removePickedUpBlobs(ctx context.Context, p store.ConnectPackage) {
	for _, id := range p.BlobIDs {
		if err := s.st.DeletePackageBlob(ctx, id); err != nil {
			s.log.Warn("delete picked-up package blob", "err", err)
			continue
		}
		s.removePackageBlobFiles([]string{id})
	}
}

func (s *Server) successMessage(ctx context.Context, appID string) string {
	m, err := s.st.AppSuccessMessage(ctx, appID)
	if err != nil || strings.TrimSpace(m) == "" {
		return "Your information from " + s.appName(ctx, appID) + " is now in your record."
	}
	return m
}

// PickUp answers the package's question and, when right, writes its things
// into the person's record: the whole pick-up without a browser.
func (s *Server) PickUp(ctx context.Context, code, answer, personID, recordID string) error {
	u, err := s.UnlockPackage(ctx, code, answer)
	if err != nil {
		return err
	}
	_, err = s.DeliverPackage(ctx, u, personID, recordID)
	return err
}

// writePackage decrypts the package and puts its things into the record,
// marking the package picked up in the same store transaction.
func (s *Server) writePackage(ctx context.Context, p store.ConnectPackage, key *dopu.Key, recordID string, claimedUntil time.Time) error {
	pkg, err := dopu.UnmarshalDataXML(p.DataXML)
	if err != nil {
		return err
	}
	pkg.Ciphertext = p.Ciphertext
	plain, err := key.Open(pkg)
	if err != nil {
		return err
	}
	things, err := parseThings(plain, s.cfg.MaxThingsPerPut)
	if err != nil {
		return err
	}
	c := &Call{AppID: p.AppID, RecordID: recordID, Now: s.cfg.Now()}
	inPackage := map[string]bool{}
	for _, id := range p.BlobIDs {
		inPackage[id] = true
	}
	var writes []store.ThingWrite
	for i, t := range things {
		t.Key = nil // new things of the record
		if t.BlobPayload != nil {
			for j := range t.BlobPayload.Blobs {
				b := &t.BlobPayload.Blobs[j]
				if b.RefURL == "" {
					continue
				}
				id, err := s.streamedPackageBlob(b.RefURL, inPackage)
				if err != nil {
					return fmt.Errorf("thing %d blob %q: %w", i+1, b.Info.Name, err)
				}
				rb, err := s.decryptPackageBlob(ctx, c, key, id, b)
				if err != nil {
					return fmt.Errorf("thing %d blob %q: %w", i+1, b.Info.Name, err)
				}
				b.RefURL = s.blobURL(blobToken{Kind: tokenWrite, BlobID: rb.ID, RecordID: recordID, Expires: c.Now.Add(time.Hour).Unix()})
			}
		}
		w, err := s.prepareThing(ctx, c, t)
		if err != nil {
			return fmt.Errorf("thing %d: %w", i+1, err)
		}
		writes = append(writes, w)
	}
	return s.st.PickUpThings(ctx, p.IdentityCode, claimedUntil, recordID, s.cfg.Now(), writes)
}

// parseThings splits the decrypted package (concatenated <thing>
// elements, no wrapper) into things.
func parseThings(plain []byte, max int) ([]*thing.Thing, error) {
	d := xml.NewDecoder(bytes.NewReader(plain))
	d.Strict = true
	var out []*thing.Thing
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("package contents: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "thing" {
				return nil, fmt.Errorf("package contents: element %q is not a thing", t.Name.Local)
			}
			if len(out) == max {
				return nil, fmt.Errorf("package contents: more than %d things", max)
			}
			var th thing.Thing
			if err := d.DecodeElement(&th, &t); err != nil {
				return nil, fmt.Errorf("package contents: %w", err)
			}
			out = append(out, &th)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("package contents: text between things")
			}
		case xml.Directive:
			return nil, errors.New("package contents: DTD not allowed")
		}
	}
	if len(out) == 0 {
		return nil, errors.New("package contents: no thing")
	}
	return out, nil
}

// streamedPackageBlob resolves a blob-ref-url inside a decrypted thing to
// one of the package's blobs. The URL's token is checked for its signature
// but not its age: the package may be picked up weeks after the upload.
func (s *Server) streamedPackageBlob(ref string, inPackage map[string]bool) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", errors.New("blob-ref-url is not a URL")
	}
	tok, err := s.parseToken(u.Query().Get(tokenParam), time.Time{})
	if err != nil || tok.Kind != tokenPackageWrite || !inPackage[tok.BlobID] {
		return "", errors.New("blob-ref-url is not one of the package's streamed blobs")
	}
	return tok.BlobID, nil
}

// decryptPackageBlob decrypts a package blob chunk by chunk into a new
// complete blob of the record, hashing the plaintext as it goes, and checks
// content-length and SHA256Block hash against the thing's blob.
func (s *Server) decryptPackageBlob(ctx context.Context, c *Call, key *dopu.Key, id string, b *thing.Blob) (store.Blob, error) {
	pb, err := s.st.GetPackageBlob(ctx, id)
	if err != nil {
		return store.Blob{}, err
	}
	if pb.State != store.BlobComplete {
		return store.Blob{}, errors.New("package blob is not complete")
	}
	src, err := os.Open(s.packageBlobPath(id))
	if err != nil {
		return store.Blob{}, err
	}
	defer src.Close()
	dec, err := key.NewChunkDecrypter(src, int(pb.PreChunkSize))
	if err != nil {
		return store.Blob{}, err
	}
	bs, err := s.hashBlockSize(b, pb.PreChunkSize)
	if err != nil {
		return store.Blob{}, err
	}
	return s.storeBlob(ctx, c, b, bs, dec)
}
