package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"dicomgate/platform/blob"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// Upload is the state of a streamed blob upload. It holds only what
// resuming needs: the URL, the chunk size, how many bytes the platform has
// acknowledged and the SHA256Block hashes of those bytes' blocks. Keep it
// (it is plain data) to resume after a failure, even in another process.
type Upload struct {
	URL       string
	ChunkSize int64
	MaxSize   int64
	// Acked is the number of bytes acknowledged, from the start.
	Acked int64
	// Blocks are the SHA256Block block hashes of the acknowledged bytes.
	Blocks [][sha256.Size]byte
	// Complete is set once the platform accepted x-hv-blob-complete.
	Complete bool
}

// ErrBlobTooLarge is returned when the data exceeds the platform's maximum
// blob size.
var ErrBlobTooLarge = errors.New("client: blob larger than the platform's maximum")

// BeginPutBlob starts a streamed blob in a record.
func (c *Client) BeginPutBlob(ctx context.Context, recordID string) (*Upload, error) {
	var resp wire.BeginPutBlobResponse
	if err := c.Call(ctx, "BeginPutBlob", 1, recordID, nil, &resp); err != nil {
		return nil, err
	}
	if resp.HashAlgorithm != thing.HashAlgorithmSHA256Block {
		return nil, fmt.Errorf("client: platform hashes blobs with %q, not %s", resp.HashAlgorithm, thing.HashAlgorithmSHA256Block)
	}
	if resp.ChunkSize <= 0 || resp.HashParams.BlockSize != resp.ChunkSize {
		return nil, fmt.Errorf("client: chunk size %d with block size %d not supported", resp.ChunkSize, resp.HashParams.BlockSize)
	}
	return &Upload{URL: resp.BlobRefURL, ChunkSize: resp.ChunkSize, MaxSize: resp.MaxBlobSize}, nil
}

// UploadBlob streams r into a new blob of the record and returns the
// blob-payload item to put into a thing (name, content type, length,
// SHA256Block hash-info and blob-ref-url). Only one chunk is in memory at a
// time.
func (c *Client) UploadBlob(ctx context.Context, recordID, name, contentType string, r io.Reader) (thing.Blob, error) {
	u, err := c.BeginPutBlob(ctx, recordID)
	if err != nil {
		return thing.Blob{}, err
	}
	if err := c.Send(ctx, u, r); err != nil {
		return thing.Blob{}, err
	}
	return u.Blob(name, contentType)
}

// Send streams r to the upload, starting at u.Acked: r must yield the
// blob's bytes from that offset on (for a fresh upload, from the start;
// after a failure, seek the source to u.Acked and call Send again). Up to
// Config.UploadConcurrency chunks are in flight at once, each hashed
// from its buffer just before it is sent (in parallel with the other
// chunks) and retried with backoff; u advances only over chunks the
// platform acknowledged, in order. The last chunk goes alone once all before
// it are acknowledged and carries x-hv-blob-complete (an empty POST carries
// it when the data ends on a chunk boundary).
func (c *Client) Send(ctx context.Context, u *Upload, r io.Reader) error {
	if u.Complete {
		return nil
	}
	if u.Acked%u.ChunkSize != 0 || int64(len(u.Blocks)) != u.Acked/u.ChunkSize {
		return fmt.Errorf("client: upload state inconsistent (acked %d, %d blocks of %d)", u.Acked, len(u.Blocks), u.ChunkSize)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		off  int64
		hash [sha256.Size]byte
		buf  []byte
		err  error
	}
	var (
		free     = make(chan []byte, c.cfg.UploadConcurrency)
		results  = make(chan result, c.cfg.UploadConcurrency)
		inFlight int
		done     = map[int64][sha256.Size]byte{}
		firstErr error
		next     = u.Acked
	)
	// Chunk buffers are made only as the data needs them (a small blob
	// uses one) and kept in the client for the next upload, so many
	// small blobs cost no fresh megabytes each.
	made := 0
	defer func() {
		if inFlight == 0 {
			for len(free) > 0 {
				c.putChunkBuffer(<-free)
			}
		}
	}()
	collect := func(res result) {
		inFlight--
		if res.err != nil {
			// The transport may still be reading a failed chunk's
			// buffer (RoundTrip can close the body after returning):
			// it is never written to again.
			if firstErr == nil {
				firstErr = res.err
				cancel()
			}
			return
		}
		free <- res.buf
		done[res.off] = res.hash
		for {
			h, ok := done[u.Acked]
			if !ok {
				break
			}
			delete(done, u.Acked)
			u.Blocks = append(u.Blocks, h)
			u.Acked += u.ChunkSize
		}
	}
	drain := func() {
		for inFlight > 0 {
			collect(<-results)
		}
	}
	for firstErr == nil {
		var buf []byte
		if len(free) == 0 && made < c.cfg.UploadConcurrency {
			buf = c.chunkBuffer(u.ChunkSize)
			made++
		} else {
			select {
			case buf = <-free:
			case res := <-results:
				collect(res)
				continue
			}
		}
		n, err := io.ReadFull(r, buf)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			drain()
			if firstErr != nil {
				return firstErr
			}
			if errors.Is(err, io.EOF) && u.Acked == 0 {
				return errors.New("client: empty blob (streamed blobs must have at least one byte)")
			}
			if u.Acked+int64(n) > u.MaxSize {
				return fmt.Errorf("%w (%d bytes)", ErrBlobTooLarge, u.MaxSize)
			}
			h := sha256.Sum256(buf[:n])
			if err := c.postChunk(ctx, u.URL, u.Acked, buf[:n], true); err != nil {
				return err
			}
			free <- buf
			if n > 0 {
				u.Blocks = append(u.Blocks, h)
				u.Acked += int64(n)
			}
			u.Complete = true
			return nil
		case err != nil:
			free <- buf
			drain()
			if firstErr != nil {
				return firstErr
			}
			return fmt.Errorf("client: read blob data at byte %d: %w", next, err)
		}
		if next+int64(n) > u.MaxSize {
			free <- buf
			drain()
			return fmt.Errorf("%w (%d bytes)", ErrBlobTooLarge, u.MaxSize)
		}
		inFlight++
		go func(off int64, buf []byte) {
			h := sha256.Sum256(buf)
			err := c.postChunk(ctx, u.URL, off, buf, false)
			results <- result{off: off, hash: h, buf: buf, err: err}
		}(next, buf)
		next += int64(n)
	}
	drain()
	return firstErr
}

// chunkBuffer returns a buffer of n bytes, one kept from an earlier upload
// when it has the size.
func (c *Client) chunkBuffer(n int64) []byte {
	if p, ok := c.chunkBufs.Get().(*[]byte); ok && int64(len(*p)) == n {
		return *p
	}
	return make([]byte, n)
}

// putChunkBuffer keeps b for a later upload.
func (c *Client) putChunkBuffer(b []byte) { c.chunkBufs.Put(&b) }

// postChunk sends one chunk at off (or, with no data, the lone complete
// POST), retrying transport failures and 5xx/408/429 answers with backoff.
// The body is the chunk buffer itself (a bytes.Reader): the transport
// copies it to the socket with no buffer in between, and a retry sends it
// again without hashing it again.
func (c *Client) postChunk(ctx context.Context, url string, off int64, data []byte, complete bool) error {
	var lastErr error
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, backoff(c.cfg.Backoff, attempt)); err != nil {
				return err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
		if err != nil {
			return err
		}
		if len(data) == 0 {
			req.Body = http.NoBody
		} else {
			req.Header.Set("Content-Range", blob.ContentRange{First: off, Last: off + int64(len(data)) - 1, Total: -1}.String())
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		if complete {
			req.Header.Set("x-hv-blob-complete", "1")
		}
		resp, err := c.cfg.HTTPClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = err
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests:
			lastErr = fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		default:
			return &HTTPError{Status: resp.StatusCode, Message: string(bytes.TrimSpace(msg))}
		}
	}
	return fmt.Errorf("client: chunk at byte %d failed after %d attempts: %w", off, c.cfg.MaxAttempts, lastErr)
}

// HTTPError is a refusal of the blob interface: an HTTP status and the
// platform's message.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("client: blob request refused: HTTP %d: %s", e.Status, e.Message)
}

// Length returns the number of bytes acknowledged.
func (u *Upload) Length() int64 { return u.Acked }

// HashInfo returns the SHA256Block hash-info of the acknowledged bytes.
func (u *Upload) HashInfo() *thing.HashInfo {
	return thing.SHA256BlockInfo(u.ChunkSize, base64.StdEncoding.EncodeToString(blob.RootOf(u.Blocks)))
}

// Blob returns the blob-payload item that references the completed upload.
func (u *Upload) Blob(name, contentType string) (thing.Blob, error) {
	if !u.Complete {
		return thing.Blob{}, errors.New("client: upload not complete")
	}
	n := u.Acked
	return thing.Blob{
		Info:          thing.BlobInfo{Name: name, ContentType: contentType, HashInfo: u.HashInfo()},
		ContentLength: &n,
		RefURL:        u.URL,
	}, nil
}

// DownloadBlob copies the blob at url (a blob-ref-url from GetThings) into
// w. If the transfer breaks, it asks again for the rest with a Range
// request, with backoff. It returns the number of bytes written.
func (c *Client) DownloadBlob(ctx context.Context, url string, w io.Writer) (int64, error) {
	var (
		written int64
		lastErr error
	)
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, backoff(c.cfg.Backoff, attempt)); err != nil {
				return written, err
			}
		}
		body, _, err := c.OpenBlob(ctx, url, written, -1)
		if err != nil {
			var he *HTTPError
			if errors.As(err, &he) && he.Status < 500 {
				return written, err
			}
			lastErr = err
			continue
		}
		src := &readSide{r: body}
		n, err := io.Copy(w, src)
		body.Close()
		written += n
		if err == nil {
			return written, nil
		}
		if ctx.Err() != nil {
			return written, ctx.Err()
		}
		if src.err == nil {
			return written, err // w failed: not the network's fault
		}
		lastErr = err
	}
	return written, fmt.Errorf("client: download failed after %d attempts: %w", c.cfg.MaxAttempts, lastErr)
}

// readSide remembers a read error, to tell a broken transfer (resumable)
// from a failing destination (not).
type readSide struct {
	r   io.Reader
	err error
}

func (r *readSide) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// OpenBlob opens the blob at url from byte offset, for length bytes (-1:
// to the end). It returns the body and the blob's total size.
func (c *Client) OpenBlob(ctx context.Context, url string, offset, length int64) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	if offset > 0 || length >= 0 {
		rng := "bytes=" + strconv.FormatInt(offset, 10) + "-"
		if length >= 0 {
			rng += strconv.FormatInt(offset+length-1, 10)
		}
		req.Header.Set("Range", rng)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			resp.Body.Close()
			return nil, 0, errors.New("client: platform ignored the Range request")
		}
		return resp.Body, resp.ContentLength, nil
	case http.StatusPartialContent:
		total := int64(-1)
		if cr, err := parseTotal(resp.Header.Get("Content-Range")); err == nil {
			total = cr
		}
		return resp.Body, total, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return nil, 0, &HTTPError{Status: resp.StatusCode, Message: string(bytes.TrimSpace(msg))}
}

func parseTotal(cr string) (int64, error) {
	r, err := blob.ParseContentRange(cr)
	if err != nil {
		return 0, err
	}
	return r.Total, nil
}
