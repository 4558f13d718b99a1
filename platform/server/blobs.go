package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"dicomgate/platform/blob"
	"dicomgate/platform/store"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// Blob URL tokens are signed with the server's token key: the payload
// (JSON) names the blob, its record, whether it allows reading or writing,
// and when it expires.
const (
	tokenWrite = "w"
	tokenRead  = "r"
	tokenParam = "blob-ref-token"
)

type blobToken struct {
	Kind        string `json:"k"`
	BlobID      string `json:"b"`
	RecordID    string `json:"r"`
	Expires     int64  `json:"e"`
	ContentType string `json:"t,omitempty"`
}

var (
	errTokenInvalid = errors.New("blob token is invalid")
	errTokenExpired = errors.New("blob token has expired")
)

func (s *Server) signToken(t blobToken) string {
	payload, _ := json.Marshal(t)
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write(payload)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(m.Sum(nil))
}

func (s *Server) parseToken(tok string, now time.Time) (blobToken, error) {
	var t blobToken
	if len(tok) > 2048 {
		return t, errTokenInvalid
	}
	p, m, ok := strings.Cut(tok, ".")
	if !ok {
		return t, errTokenInvalid
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(m)
	if err1 != nil || err2 != nil {
		return t, errTokenInvalid
	}
	h := hmac.New(sha256.New, s.tokenKey)
	h.Write(payload)
	if !hmac.Equal(mac, h.Sum(nil)) {
		return t, errTokenInvalid
	}
	if err := json.Unmarshal(payload, &t); err != nil {
		return t, errTokenInvalid
	}
	if !now.Before(time.Unix(t.Expires, 0)) {
		return t, errTokenExpired
	}
	return t, nil
}

func (s *Server) blobURL(t blobToken) string {
	return s.cfg.PublicURL + PathBlob + "?" + tokenParam + "=" + url.QueryEscape(s.signToken(t))
}

// readURL returns a read URL of a blob of a record, served with
// contentType, that expires DownloadTokenTTL after now.
func (s *Server) readURL(recordID, blobID, contentType string, now time.Time) string {
	return s.blobURL(blobToken{Kind: tokenRead, BlobID: blobID, RecordID: recordID,
		Expires: now.Add(s.cfg.DownloadTokenTTL).Unix(), ContentType: contentType})
}

func (s *Server) blobPath(id string) string {
	return filepath.Join(s.blobDir, id[:2], id)
}

// beginPutBlob is BeginPutBlob v1: it creates an empty blob of the record
// and answers its write URL and chunking parameters.
//
// Nothing of it needs to survive a crash before a chunk is acknowledged, so
// it costs no sync where the store allows (lazyBlobStore): the blob's row
// and its file's directory entry become durable with its first chunk.
func (s *Server) beginPutBlob(ctx context.Context, c *Call) (any, error) {
	id := uuid.NewString()
	if err := s.createBlobFileLazily(id); err != nil {
		return nil, err
	}
	b := store.Blob{ID: id, RecordID: c.RecordID, AppID: c.AppID, State: store.BlobUploading,
		BlockSize: s.cfg.ChunkSize, MaxSize: s.cfg.MaxBlobSize, Total: -1, Created: c.Now}
	create := s.st.CreateBlob
	if ls, ok := s.st.(lazyBlobStore); ok {
		create = ls.CreateBlobLazily
	}
	if err := create(ctx, b); err != nil {
		return nil, err
	}
	u := s.blobURL(blobToken{Kind: tokenWrite, BlobID: id, RecordID: c.RecordID, Expires: c.Now.Add(s.cfg.UploadTokenTTL).Unix()})
	return &wire.BeginPutBlobResponse{
		BlobRefURL:    u,
		ChunkSize:     s.cfg.ChunkSize,
		MaxBlobSize:   s.cfg.MaxBlobSize,
		HashAlgorithm: thing.HashAlgorithmSHA256Block,
		HashParams:    thing.HashParams{BlockSize: s.cfg.ChunkSize},
	}, nil
}

// lazyBlobStore is implemented by stores that can write a streamed blob's
// bookkeeping with fewer syncs (sqlstore). Without it the server uses
// CreateBlob, SetBlobTotal, PutBlock and CompleteBlob, one commit each.
type lazyBlobStore interface {
	// CreateBlobLazily is CreateBlob whose commit need not be durable
	// until the store's next durable commit.
	CreateBlobLazily(ctx context.Context, b store.Blob) error
	// PutChunk records a chunk's total (< 0: none), new blocks and, when
	// done is not nil, the blob's completion, durably in one commit.
	PutChunk(ctx context.Context, blobID string, total int64, blocks []store.Block, done *store.BlobCompletion) error
}

func (s *Server) createBlobFile(id string) error {
	return createDurableFile(s.blobPath(id))
}

// createBlobFileLazily creates the empty file of a streamed blob without
// syncing its directory: writeChunk syncs it, alongside the chunk's data,
// before a chunk is acknowledged (and recreates the file if a crash lost
// it). The id[:2] directory's own entry is made durable here, once per
// directory and process, since writeChunk syncs only the directory itself.
func (s *Server) createBlobFileLazily(id string) error {
	p := s.blobPath(id)
	dir := filepath.Dir(p)
	if _, ok := s.durableDirs.Load(dir); !ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		// Synced even when another request made the directory: its
		// creator may not have synced the parent yet.
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
		s.durableDirs.Store(dir, struct{}{})
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// createDurableFile creates the empty file p, and the directories on its
// way that are missing, so that they survive a crash before the file's id
// is acknowledged: the file's directory is synced after the file entry was
// added, and each directory created is synced in its parent. Without that
// an acknowledged blob file could be missing after a power loss.
func createDurableFile(p string) error {
	dir := filepath.Dir(p)
	// The topmost missing directory: its parent needs a sync too.
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, os.ErrNotExist) || filepath.Dir(d) == d {
			break
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	// Deepest first; a directory that a concurrent creator made is synced
	// anyway, which is harmless.
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// truncateDurably cuts the file at path to size and syncs it, so that the
// size recorded as complete is the file's size after a crash too (a chunk
// beyond the end that was written but never recorded is cut off).
func truncateDurably(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// truncateDurablyIfLonger is truncateDurably for a file that is usually
// exactly size bytes long already: every byte up to size was synced by
// writeChunk before its block was recorded, with the size it reached, so
// only a file longer than that (a chunk beyond the end written but never
// recorded) needs cutting and a sync.
func truncateDurablyIfLonger(path string, size int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() == size {
		return nil
	}
	return truncateDurably(path, size)
}

// syncDir makes the entries of directory d durable.
func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", d, err)
	}
	return nil
}

// httpError answers a blob request with a status and a message.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

// tokenFromRequest checks the request's blob token and that it is one of
// kinds; when it is not, it answers 403 and returns false.
func (s *Server) tokenFromRequest(w http.ResponseWriter, r *http.Request, kinds ...string) (blobToken, bool) {
	t, err := s.parseToken(r.URL.Query().Get(tokenParam), s.cfg.Now())
	switch {
	case err != nil:
		httpError(w, http.StatusForbidden, "%v", err)
		return t, false
	case !slices.Contains(kinds, t.Kind):
		httpError(w, http.StatusForbidden, "blob token does not allow this request")
		return t, false
	}
	return t, true
}

// serveBlobUpload receives one chunk of a streamed blob (SPEC §4) and
// routes it by the kind of its token: a blob of a record (BeginPutBlob) or
// an encrypted blob of a package (BeginPutConnectPackageBlob).
func (s *Server) serveBlobUpload(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.tokenFromRequest(w, r, tokenWrite, tokenPackageWrite)
	if !ok {
		return
	}
	if tok.Kind == tokenPackageWrite {
		s.servePackageBlobUpload(w, r, tok)
		return
	}
	s.serveRecordBlobUpload(w, r, tok)
}

// chunkHeaders reads the Content-Range and x-hv-blob-complete of a chunk
// POST. rng is nil for an empty POST that only completes the blob. When
// the headers do not make a chunk or a completion it answers 400 and
// returns false.
func chunkHeaders(w http.ResponseWriter, r *http.Request) (rng *blob.ContentRange, complete, ok bool) {
	complete = r.Header.Get("x-hv-blob-complete") == "1"
	cr := r.Header.Get("Content-Range")
	switch {
	case cr != "":
		c, err := blob.ParseContentRange(cr)
		if err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return nil, false, false
		}
		return &c, complete, true
	case r.ContentLength != 0:
		httpError(w, http.StatusBadRequest, "a chunk needs Content-Range: bytes FIRST-LAST/TOTAL")
		return nil, false, false
	case !complete:
		httpError(w, http.StatusBadRequest, "empty POST without x-hv-blob-complete: 1")
		return nil, false, false
	}
	return nil, true, true
}

// serveRecordBlobUpload receives one chunk of a blob of a record. Chunks
// start on a block boundary and hold whole blocks, except the blob's last;
// they may come in any order and again. Each block is hashed while it is
// written, the file is synced, and only then is the block recorded and the
// chunk acknowledged. x-hv-blob-complete (on a chunk or alone) completes the
// blob once every block up to the end is there.
func (s *Server) serveRecordBlobUpload(w http.ResponseWriter, r *http.Request, tok blobToken) {
	ctx := r.Context()
	b, err := s.st.GetBlob(ctx, tok.BlobID)
	if err != nil {
		s.blobLookupFailed(w, err)
		return
	}
	rng, complete, ok := chunkHeaders(w, r)
	if !ok {
		return
	}
	if rng != nil {
		done, code, err := s.receiveChunk(ctx, b, *rng, r.Body, complete)
		if err != nil {
			s.refuseBlob(w, code, err)
			return
		}
		complete = complete && !done
	}
	if complete {
		if code, err := s.completeBlob(ctx, b.ID); err != nil {
			s.refuseBlob(w, code, err)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// refuseBlob answers a failed chunk: the reason for a 4xx, and only
// "internal error" (the reason goes to the log) for a 5xx.
func (s *Server) refuseBlob(w http.ResponseWriter, code int, err error) {
	if code >= 500 {
		s.log.Error("platform blob upload", "err", err)
		httpError(w, code, "internal error")
		return
	}
	httpError(w, code, "%v", err)
}

func (s *Server) blobLookupFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		httpError(w, http.StatusNotFound, "blob not found (removed?)")
		return
	}
	s.log.Error("platform blob lookup", "err", err)
	httpError(w, http.StatusInternalServerError, "internal error")
}

// receiveChunk writes and records one chunk. With a lazyBlobStore the
// chunk's total and blocks are recorded in one commit, and a chunk that
// holds the whole blob and carries x-hv-blob-complete (complete) completes
// it in that same commit; done reports that.
func (s *Server) receiveChunk(ctx context.Context, b store.Blob, rng blob.ContentRange, body io.Reader, complete bool) (done bool, code int, err error) {
	bs := b.BlockSize
	switch {
	case rng.Last >= b.MaxSize || rng.Total > b.MaxSize:
		return false, http.StatusRequestEntityTooLarge, fmt.Errorf("blob would exceed the maximum blob size of %d bytes", b.MaxSize)
	case rng.First%bs != 0:
		return false, http.StatusBadRequest, fmt.Errorf("chunk starts at byte %d, not on a block boundary (multiple of %d)", rng.First, bs)
	case rng.Len()%bs != 0 && rng.Total >= 0 && rng.Last+1 != rng.Total:
		return false, http.StatusBadRequest, fmt.Errorf("chunk of %d bytes is not a multiple of the block size %d and does not end the blob", rng.Len(), bs)
	}
	ls, lazy := s.st.(lazyBlobStore)
	if rng.Total >= 0 {
		if lazy {
			// Checked here, recorded with the blocks (and checked again).
			if b.Total >= 0 && b.Total != rng.Total {
				return false, http.StatusConflict, fmt.Errorf("total length %d differs from the one announced before", rng.Total)
			}
		} else if err := s.st.SetBlobTotal(ctx, b.ID, rng.Total); errors.Is(err, store.ErrConflict) {
			return false, http.StatusConflict, fmt.Errorf("total length %d differs from the one announced before", rng.Total)
		} else if err != nil {
			return false, http.StatusInternalServerError, err
		}
	}
	// What was received before, the write and its record are one step
	// for each block (see blockLocks).
	unlock, err := s.blocks.lock(ctx, b.ID, rng.First/bs, rng.Last/bs)
	if err != nil {
		return false, http.StatusServiceUnavailable, err
	}
	defer unlock()
	have, err := s.st.Blocks(ctx, b.ID, rng.First/bs, rng.Last/bs+1)
	if err != nil {
		return false, http.StatusInternalServerError, err
	}
	if b.State == store.BlobComplete && rng.Last >= b.Size {
		return false, http.StatusConflict, fmt.Errorf("blob is complete with %d bytes", b.Size)
	}
	path := s.blobPath(b.ID)
	fresh, code, err := s.writeChunk(path, rng, bs, have, body, lazy)
	if err != nil {
		return false, code, err
	}
	if !lazy {
		for _, blk := range fresh {
			if err := s.st.PutBlock(ctx, b.ID, blk); errors.Is(err, store.ErrConflict) {
				return false, http.StatusConflict, err
			} else if err != nil {
				return false, http.StatusInternalServerError, err
			}
		}
		return false, 0, nil
	}
	// The whole blob in one chunk, none of it received before: its blocks
	// are fresh, in order, full but for the last, and add up to the total.
	var completion *store.BlobCompletion
	if complete && b.State != store.BlobComplete && len(have) == 0 && len(fresh) > 0 &&
		rng.First == 0 && rng.Total >= 0 && rng.Last+1 == rng.Total {
		if err := truncateDurablyIfLonger(path, rng.Total); err != nil {
			return false, http.StatusInternalServerError, err
		}
		hashes := make([][sha256.Size]byte, len(fresh))
		for i, blk := range fresh {
			hashes[i] = blk.Hash
		}
		completion = &store.BlobCompletion{Size: rng.Total, Hash: blob.RootOf(hashes), At: s.cfg.Now()}
	}
	if len(fresh) == 0 && completion == nil && (rng.Total < 0 || b.Total == rng.Total) {
		return false, 0, nil // nothing new to record
	}
	if err := ls.PutChunk(ctx, b.ID, rng.Total, fresh, completion); errors.Is(err, store.ErrConflict) {
		return false, http.StatusConflict, err
	} else if err != nil {
		return false, http.StatusInternalServerError, err
	}
	return completion != nil, 0, nil
}

// writeChunk writes the blocks of the chunk rng (blocks of bs bytes) from
// body into the file at path and returns the blocks that are new, after a
// sync, for the caller to record. With lazy (a blob file created by
// createBlobFileLazily) the file is created again if a crash lost it, and
// its directory is synced alongside the data. Blocks in have (received before) are
// only hashed and compared, never written: a chunk sent again must not
// overwrite acknowledged bytes before its hash is known to match, and a
// mismatch is a conflict. Streamed blobs and package blobs both come here.
func (s *Server) writeChunk(path string, rng blob.ContentRange, bs int64, have []store.Block, body io.Reader, lazy bool) ([]store.Block, int, error) {
	known := make(map[int64]store.Block, len(have))
	for _, blk := range have {
		known[blk.Index] = blk
	}
	f, err := openChunkFile(path, lazy)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	defer f.Close()

	// Each piece is read whole into one buffer, hashed and written from
	// it: one pass over the bytes in user space.
	bufp := s.pieces.Get().(*[]byte)
	defer s.pieces.Put(bufp)
	buf := *bufp
	h := sha256.New()
	var fresh []store.Block
	for off := rng.First; off <= rng.Last; off += bs {
		n := min(bs, rng.Last+1-off)
		h.Reset()
		blk := store.Block{Index: off / bs, Length: n}
		prev, seen := known[blk.Index]
		for pos := off; pos < off+n; {
			piece := buf[:min(int64(len(buf)), off+n-pos)]
			got, err := io.ReadFull(body, piece)
			if err != nil {
				return nil, http.StatusBadRequest, fmt.Errorf("body has %d bytes, Content-Range %s announces %d", pos-rng.First+int64(got), rng, rng.Len())
			}
			h.Write(piece)
			if !seen {
				if err := f.WriteAt(piece, pos); err != nil {
					return nil, http.StatusInternalServerError, err
				}
			}
			pos += int64(got)
		}
		h.Sum(blk.Hash[:0])
		if seen {
			if prev.Length != blk.Length || prev.Hash != blk.Hash {
				return nil, http.StatusConflict, fmt.Errorf("bytes %d-%d were received before with other content", off, off+n-1)
			}
			continue
		}
		fresh = append(fresh, blk)
	}
	if extra, _ := io.CopyN(io.Discard, body, 1); extra > 0 {
		return nil, http.StatusBadRequest, fmt.Errorf("body is longer than Content-Range %s", rng)
	}
	if len(fresh) > 0 {
		// The blob file's directory entry (lazy) is synced at the same
		// time as its data: both must be durable before the blocks are
		// recorded, in no particular order.
		dirErr := make(chan error, 1)
		if lazy {
			go func() { dirErr <- syncDir(filepath.Dir(path)) }()
		} else {
			dirErr <- nil
		}
		err := f.Sync()
		if err := errors.Join(err, <-dirErr); err != nil {
			return nil, http.StatusInternalServerError, err
		}
	}
	return fresh, 0, nil
}

// completeBlob checks that blocks 0..n-1 are all there, full but for the
// last, match the announced total, and records the SHA256Block root.
func (s *Server) completeBlob(ctx context.Context, id string) (int, error) {
	b, err := s.st.GetBlob(ctx, id)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if b.State == store.BlobComplete {
		return 0, nil
	}
	blocks, err := s.st.Blocks(ctx, id, 0, -1)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	size, err := wholeBlocks(blocks, b.BlockSize, b.Total)
	if err != nil {
		return http.StatusBadRequest, err
	}
	hashes := make([][sha256.Size]byte, len(blocks))
	for i, blk := range blocks {
		hashes[i] = blk.Hash
	}
	if err := truncateDurablyIfLonger(s.blobPath(id), size); err != nil {
		return http.StatusInternalServerError, err
	}
	if err := s.st.CompleteBlob(ctx, id, size, blob.RootOf(hashes), s.cfg.Now()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return http.StatusConflict, err
		}
		return http.StatusInternalServerError, err
	}
	return 0, nil
}

// wholeBlocks checks that blocks (in index order) are blocks 0..n-1 of
// blockSize bytes but for the last, adding up to total when it is known
// (>= 0), and returns the size they make. Its errors say what is missing.
func wholeBlocks(blocks []store.Block, blockSize, total int64) (int64, error) {
	if len(blocks) == 0 {
		return 0, errors.New("blob is empty; empty streamed blobs are refused")
	}
	var size int64
	for i, blk := range blocks {
		if blk.Index != int64(i) {
			return 0, fmt.Errorf("bytes %d-%d are missing", int64(i)*blockSize, blk.Index*blockSize-1)
		}
		if blk.Length != blockSize && i != len(blocks)-1 {
			return 0, fmt.Errorf("block at byte %d is short (%d bytes) but is not the last", blk.Index*blockSize, blk.Length)
		}
		size += blk.Length
	}
	if total >= 0 && size != total {
		return 0, fmt.Errorf("received %d bytes of the %d announced; bytes %d-%d are missing", size, total, size, total-1)
	}
	return size, nil
}

// serveBlobDownload answers GET and HEAD on a read URL, with ranges (206),
// Content-Length and an ETag (the SHA256Block root). The seed's clients ask
// for ranges with Content-Range on the GET; that is taken as Range.
func (s *Server) serveBlobDownload(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.tokenFromRequest(w, r, tokenRead)
	if !ok {
		return
	}
	b, err := s.st.GetBlob(r.Context(), tok.BlobID)
	if err != nil {
		s.blobLookupFailed(w, err)
		return
	}
	if b.State != store.BlobComplete {
		httpError(w, http.StatusNotFound, "blob is not complete")
		return
	}
	f, err := os.Open(s.blobPath(b.ID))
	if err != nil {
		httpError(w, http.StatusNotFound, "blob not found")
		return
	}
	defer f.Close()
	if r.Header.Get("Range") == "" {
		if cr := r.Header.Get("Content-Range"); strings.HasPrefix(cr, "bytes ") && !strings.Contains(cr, "/") {
			r.Header.Set("Range", "bytes="+strings.TrimPrefix(cr, "bytes "))
		}
	}
	ct := tok.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(b.Hash)+`"`)
	w.Header().Set("Cache-Control", "private, max-age="+strconv.Itoa(int(s.cfg.DownloadTokenTTL.Seconds())))
	http.ServeContent(w, r, "", b.Completed, f)
}
