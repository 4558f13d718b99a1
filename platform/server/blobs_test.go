package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dicomgate/platform/blob"
	"dicomgate/platform/client"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// chunk POSTs raw bytes to a blob URL and returns the status and message.
func chunk(t testing.TB, url, contentRange string, data []byte, complete bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	if complete {
		req.Header.Set("x-hv-blob-complete", "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

func rng(first, last, total int) string {
	if total < 0 {
		return fmt.Sprintf("bytes %d-%d/*", first, last)
	}
	return fmt.Sprintf("bytes %d-%d/%d", first, last, total)
}

// begin starts a blob and returns its write URL.
func (e *env) begin() string {
	e.t.Helper()
	u, err := e.client.BeginPutBlob(context.Background(), e.record)
	if err != nil {
		e.t.Fatal(err)
	}
	if u.ChunkSize != testChunk {
		e.t.Fatalf("chunk size %d", u.ChunkSize)
	}
	return u.URL
}

func sha256Block(data []byte, bs int64) *thing.HashInfo {
	h := blob.NewHasher(bs)
	h.Write(data)
	root, _ := h.RootBase64()
	return thing.SHA256BlockInfo(bs, root)
}

func ref(url, name string, data []byte) thing.Blob {
	n := int64(len(data))
	return thing.Blob{Info: thing.BlobInfo{Name: name, ContentType: "application/octet-stream", HashInfo: sha256Block(data, testChunk)},
		ContentLength: &n, RefURL: url}
}

// putAndRead puts a thing referencing the blob and downloads it back.
func (e *env) putAndRead(b thing.Blob) []byte {
	e.t.Helper()
	ctx := context.Background()
	uid := fmt.Sprintf("9.%d", time.Now().UnixNano())
	if _, err := e.client.PutThings(ctx, e.record, newStudy(uid, "x", b)); err != nil {
		e.t.Fatal(err)
	}
	groups, err := e.client.GetThings(ctx, e.record, client.StudyQuery(misType, uid))
	if err != nil {
		e.t.Fatal(err)
	}
	got := groups[0].Things[0].Blob(b.Info.Name)
	if got.Info.HashInfo.Hash != b.Info.HashInfo.Hash {
		e.t.Fatalf("hash-info read back %s, want %s", got.Info.HashInfo.Hash, b.Info.HashInfo.Hash)
	}
	return e.download(got.RefURL)
}

func TestBlobSizes(t *testing.T) {
	e := newEnv(t)
	for _, n := range []int{1, testChunk - 1, testChunk, testChunk + 1, 3 * testChunk, 3*testChunk + 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := pattern(n, byte(n))
			b := e.upload(data, "b", "application/octet-stream")
			if want := sha256Block(data, testChunk).Hash; b.Info.HashInfo.Hash != want {
				t.Fatalf("client hash %s, want %s", b.Info.HashInfo.Hash, want)
			}
			if got := e.putAndRead(b); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, differ", len(got))
			}
		})
	}
	t.Run("one block is SHA256(SHA256(data))", func(t *testing.T) {
		data := []byte("hello")
		h := blob.NewHasher(testChunk)
		h.Write(data)
		b := e.upload(data, "b", "text/plain")
		if got, _ := h.RootBase64(); got != b.Info.HashInfo.Hash {
			t.Fatal("hash mismatch")
		}
	})
}

func TestBlobChunksOutOfOrderAndRepeated(t *testing.T) { testBlobChunksOutOfOrder(t, newEnv(t)) }

func testBlobChunksOutOfOrder(t *testing.T, e *env) {
	data := pattern(3*testChunk+10, 5)
	url := e.begin()
	steps := []struct {
		first, last int
		complete    bool
	}{
		{2 * testChunk, 3*testChunk - 1, false},
		{0, testChunk - 1, false},
		{0, testChunk - 1, false}, // repeated: idempotent
		{3 * testChunk, len(data) - 1, false},
		{testChunk, 2*testChunk - 1, true},
	}
	for _, s := range steps {
		if code, msg := chunk(t, url, rng(s.first, s.last, len(data)), data[s.first:s.last+1], s.complete); code != http.StatusOK {
			t.Fatalf("chunk %d-%d: %d %s", s.first, s.last, code, msg)
		}
	}
	// A repeat after completion is still fine; other bytes are not.
	if code, msg := chunk(t, url, rng(0, testChunk-1, len(data)), data[:testChunk], false); code != http.StatusOK {
		t.Fatalf("repeat after complete: %d %s", code, msg)
	}
	changed := append([]byte(nil), data[:testChunk]...)
	changed[3] ^= 0xff
	if code, _ := chunk(t, url, rng(0, testChunk-1, len(data)), changed, false); code != http.StatusConflict {
		t.Fatalf("changed repeat: %d, want 409", code)
	}
	if got := e.putAndRead(ref(url, "b", data)); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
}

func TestBlobRefusals(t *testing.T) {
	e := newEnv(t)
	data := pattern(2*testChunk+3, 7)
	tests := []struct {
		name  string
		steps func(t *testing.T, url string) (int, string)
		code  int
		msg   string
	}{
		{"gap", func(t *testing.T, url string) (int, string) {
			chunk(t, url, rng(0, testChunk-1, -1), data[:testChunk], false)
			return chunk(t, url, rng(2*testChunk, len(data)-1, -1), data[2*testChunk:], true)
		}, http.StatusBadRequest, "missing"},
		{"short of total", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, rng(0, testChunk-1, len(data)), data[:testChunk], true)
		}, http.StatusBadRequest, "missing"},
		{"overlap", func(t *testing.T, url string) (int, string) {
			chunk(t, url, rng(0, testChunk-1, -1), data[:testChunk], false)
			return chunk(t, url, rng(testChunk/2, testChunk/2+testChunk-1, -1), data[testChunk/2:testChunk/2+testChunk], false)
		}, http.StatusBadRequest, "block boundary"},
		{"oversize", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, rng(100*testChunk, 101*testChunk-1, -1), pattern(testChunk, 1), false)
		}, http.StatusRequestEntityTooLarge, "maximum"},
		{"oversize total", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, rng(0, testChunk-1, 1000*testChunk), data[:testChunk], false)
		}, http.StatusRequestEntityTooLarge, "maximum"},
		{"body shorter than range", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, rng(0, testChunk-1, -1), data[:10], false)
		}, http.StatusBadRequest, "announces"},
		{"body longer than range", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, rng(0, 9, 10), data[:20], false)
		}, http.StatusBadRequest, "longer"},
		{"bad Content-Range", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, "bytes=0-9", data[:10], false)
		}, http.StatusBadRequest, "Content-Range"},
		{"no Content-Range", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, "", data[:10], false)
		}, http.StatusBadRequest, "Content-Range"},
		{"changed total", func(t *testing.T, url string) (int, string) {
			chunk(t, url, rng(0, testChunk-1, len(data)), data[:testChunk], false)
			return chunk(t, url, rng(testChunk, 2*testChunk-1, len(data)+1), data[testChunk:2*testChunk], false)
		}, http.StatusConflict, "total"},
		{"empty blob", func(t *testing.T, url string) (int, string) {
			return chunk(t, url, "", nil, true)
		}, http.StatusBadRequest, "empty"},
		{"bad token", func(t *testing.T, url string) (int, string) {
			return chunk(t, url+"x", rng(0, 9, 10), data[:10], true)
		}, http.StatusForbidden, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := tc.steps(t, e.begin())
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %q, want %d with %q", code, msg, tc.code, tc.msg)
			}
		})
	}
}

func TestPutThingsChecksBlobs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := pattern(testChunk+9, 3)

	// Sent, but never completed.
	url := e.begin()
	chunk(t, url, rng(0, testChunk-1, -1), data[:testChunk], false)
	_, err := e.client.PutThings(ctx, e.record, newStudy("1", "x", ref(url, "b", data[:testChunk])))
	wantCode(t, err, wire.BlobTokenNotCompleted)

	good := e.upload(data, "b", "application/octet-stream")
	bad := good
	bad.Info.HashInfo = sha256Block(append([]byte{1}, data[1:]...), testChunk)
	_, err = e.client.PutThings(ctx, e.record, newStudy("1", "x", bad))
	wantCode(t, err, wire.InvalidBlobHash)

	bad = good
	n := int64(len(data) + 1)
	bad.ContentLength = &n
	_, err = e.client.PutThings(ctx, e.record, newStudy("1", "x", bad))
	wantCode(t, err, wire.InvalidThing)

	bad = good
	bad.Info.HashInfo = sha256Block(data, 2*testChunk)
	_, err = e.client.PutThings(ctx, e.record, newStudy("1", "x", bad))
	wantCode(t, err, wire.BlobHashBlockSizeMismatch)

	bad = good
	bad.Info.HashInfo = &thing.HashInfo{Algorithm: "MD5", Hash: "x"}
	_, err = e.client.PutThings(ctx, e.record, newStudy("1", "x", bad))
	wantCode(t, err, wire.InvalidBlobHashAlgorithm)

	bad = good
	bad.RefURL = e.http.URL + "/streaming/wildcatblob.ashx?blob-ref-token=forged"
	_, err = e.client.PutThings(ctx, e.record, newStudy("1", "x", bad))
	wantCode(t, err, wire.InvalidBlobRefURL)
}

func TestBlobTokensExpire(t *testing.T) {
	e := newEnv(t)
	data := pattern(10, 1)
	url := e.begin()
	e.clock.Advance(8*time.Hour + time.Second)
	if code, msg := chunk(t, url, rng(0, 9, 10), data, true); code != http.StatusForbidden || !strings.Contains(msg, "expired") {
		t.Fatalf("expired write token: %d %q", code, msg)
	}

	b := e.upload(data, "b", "text/plain")
	uid := "7.7"
	if _, err := e.client.PutThings(context.Background(), e.record, newStudy(uid, "x", b)); err != nil {
		t.Fatal(err)
	}
	groups, err := e.client.GetThings(context.Background(), e.record, client.StudyQuery(misType, uid))
	if err != nil {
		t.Fatal(err)
	}
	read := groups[0].Things[0].Blob("b").RefURL
	e.clock.Advance(time.Hour + time.Second)
	resp, err := http.Get(read)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("expired read token: %d", resp.StatusCode)
	}
	// A write URL does not read.
	resp, err = http.Get(e.begin())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("write token used to read: %d", resp.StatusCode)
	}
}

func TestBlobRangedDownload(t *testing.T) {
	e := newEnv(t)
	data := pattern(3*testChunk+1, 11)
	b := e.upload(data, "b", "application/dicom")
	uid := "5.5"
	if _, err := e.client.PutThings(context.Background(), e.record, newStudy(uid, "x", b)); err != nil {
		t.Fatal(err)
	}
	groups, err := e.client.GetThings(context.Background(), e.record, client.StudyQuery(misType, uid))
	if err != nil {
		t.Fatal(err)
	}
	url := groups[0].Things[0].Blob("b").RefURL
	get := func(method string, hdr map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := get(http.MethodGet, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.ContentLength != int64(len(data)) ||
		resp.Header.Get("ETag") == "" || resp.Header.Get("Content-Type") != "application/dicom" {
		t.Fatalf("full GET: %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	etag := resp.Header.Get("ETag")
	tests := []struct {
		hdr  map[string]string
		want []byte
	}{
		{map[string]string{"Range": "bytes=0-127"}, data[:128]},
		{map[string]string{"Range": "bytes=100-"}, data[100:]},
		{map[string]string{"Range": "bytes=-5"}, data[len(data)-5:]},
		{map[string]string{"Content-Range": "bytes 0-99"}, data[:100]}, // the seed's form
	}
	for _, tc := range tests {
		resp, body := get(http.MethodGet, tc.hdr)
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, tc.want) {
			t.Fatalf("%v: %d, %d bytes", tc.hdr, resp.StatusCode, len(body))
		}
	}
	if resp, _ := get(http.MethodGet, map[string]string{"Range": "bytes=5000-6000"}); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
	}
	resp, body = get(http.MethodHead, nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(data)) || resp.Header.Get("ETag") != etag {
		t.Fatalf("HEAD: %d, %d, %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
	if resp, _ := get(http.MethodGet, map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	// The client's ranged open.
	rc, total, err := e.client.OpenBlob(context.Background(), url, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(rc)
	rc.Close()
	if total != int64(len(data)) || !bytes.Equal(part, data[10:30]) {
		t.Fatalf("OpenBlob: total %d, %d bytes", total, len(part))
	}
}

// failingReader yields n bytes of r, then an error, like a source that breaks.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("source broke")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestUploadResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := pattern(5*testChunk+7, 13)
	u, err := e.client.BeginPutBlob(ctx, e.record)
	if err != nil {
		t.Fatal(err)
	}
	err = e.client.Send(ctx, u, &failingReader{r: bytes.NewReader(data), n: 2*testChunk + 30})
	if err == nil || u.Acked != 2*testChunk || u.Complete {
		t.Fatalf("after break: err %v, acked %d", err, u.Acked)
	}
	// Resume from the last acknowledged byte with a fresh source.
	if err := e.client.Send(ctx, u, bytes.NewReader(data[u.Acked:])); err != nil {
		t.Fatal(err)
	}
	b, err := u.Blob("b", "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if b.Info.HashInfo.Hash != sha256Block(data, testChunk).Hash {
		t.Fatal("resumed hash differs")
	}
	if got := e.putAndRead(b); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
}

// flakyTransport fails every other blob chunk POST before it reaches the server.
type flakyTransport struct {
	n atomic.Int64
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "wildcatblob") && r.Method == http.MethodPost {
		if f.n.Add(1)%2 == 1 {
			return nil, errors.New("connection reset by peer")
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestUploadRetries(t *testing.T) {
	e := newEnv(t)
	c, err := client.New(client.Config{URL: e.http.URL, Credentials: e.creds, Now: e.clock.Now, Backoff: time.Millisecond,
		HTTPClient: &http.Client{Transport: &flakyTransport{}}})
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(4*testChunk+1, 17)
	b, err := c.UploadBlob(context.Background(), e.record, "b", "x/y", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.putAndRead(b); !bytes.Equal(got, data) {
		t.Fatal("retried upload differs")
	}
}

func TestBlobReplacedAndCollected(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := e.upload(pattern(100, 1), "preview", "image/jpeg")
	keys, err := e.client.PutThings(ctx, e.record, newStudy("3.3", "x", first))
	if err != nil {
		t.Fatal(err)
	}
	e.begin() // an upload abandoned before its first chunk
	// Replace the blob under the same name.
	second := e.upload(pattern(50, 2), "preview", "image/jpeg")
	upd := newStudy("3.3", "x", second)
	upd.Key = &keys[0]
	if _, err := e.client.PutThings(ctx, e.record, upd); err != nil {
		t.Fatal(err)
	}
	files := func() int {
		n := 0
		filepath.WalkDir(filepath.Join(e.cfg.DataDir, "blobs"), func(_ string, d os.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				n++
			}
			return nil
		})
		return n
	}
	if n := files(); n != 3 {
		t.Fatalf("%d blob files before sweep, want 3", n)
	}
	if err := e.srv.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 3 {
		t.Fatalf("sweep inside the grace period removed files: %d left", n)
	}
	e.clock.Advance(25 * time.Hour)
	if err := e.srv.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 1 {
		t.Fatalf("%d blob files after sweep, want 1 (the replacement)", n)
	}
	groups, err := e.client.GetThings(ctx, e.record, client.StudyQuery(misType, "3.3"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.download(groups[0].Things[0].Blob("preview").RefURL); !bytes.Equal(got, pattern(50, 2)) {
		t.Fatal("replacement blob differs")
	}
}

// TestBlobFileLostBeforeFirstChunk covers what BeginPutBlob leaves unsynced:
// its blob file's directory entry may be lost in a crash (here: removed),
// and a stale tail (a chunk written but never recorded, here: appended)
// must not survive into the completed blob. A whole blob in one chunk
// with x-hv-blob-complete then still completes with exactly its bytes.
func TestBlobFileLostBeforeFirstChunk(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"file lost", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"stale tail", func(t *testing.T, path string) {
			if err := os.WriteFile(path, pattern(3*testChunk, 9), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := filepath.Glob(filepath.Join(e.cfg.DataDir, "blobs", "*", "*"))
			u := e.begin()
			after, _ := filepath.Glob(filepath.Join(e.cfg.DataDir, "blobs", "*", "*"))
			created := difference(after, before)
			if len(created) != 1 {
				t.Fatalf("BeginPutBlob created files %q", created)
			}
			tc.spoil(t, created[0])
			data := pattern(testChunk+5, 3)
			if code, msg := chunk(t, u, rng(0, len(data)-1, len(data)), data, true); code != http.StatusOK {
				t.Fatalf("chunk: %d %s", code, msg)
			}
			if got := e.putAndRead(ref(u, "b", data)); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(data))
			}
		})
	}
}

func difference(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestConcurrentChunksOfOneBlock: two chunks bring other bytes for the same
// new block at once. One is accepted, the other refused with 409, and the
// blob read back is the accepted bytes under the accepted hash: the
// refused chunk must not have written the file.
func TestConcurrentChunksOfOneBlock(t *testing.T) {
	e := newEnv(t)
	a := pattern(2*testChunk, 1)
	b := append([]byte(nil), a...)
	b[5] ^= 0xff
	url := e.begin()
	total := len(a)

	// The first chunk stops halfway through its body...
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url, pr)
		req.ContentLength = testChunk
		req.Header.Set("Content-Range", rng(0, testChunk-1, total))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if _, err := pw.Write(a[:testChunk/2]); err != nil {
		t.Fatal(err)
	}
	// ...while the second brings the whole block with other bytes.
	second := make(chan int, 1)
	go func() {
		code, _ := chunk(t, url, rng(0, testChunk-1, total), b[:testChunk], false)
		second <- code
	}()
	var code2 int
	select {
	case code2 = <-second: // it did not wait for the first
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := pw.Write(a[testChunk/2 : testChunk]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	code1 := <-first
	if code2 == 0 {
		code2 = <-second
	}
	var accepted []byte
	switch {
	case code1 == http.StatusOK && code2 == http.StatusConflict:
		accepted = a
	case code2 == http.StatusOK && code1 == http.StatusConflict:
		accepted = b
	default:
		t.Fatalf("chunks answered %d and %d, want one 200 and one 409", code1, code2)
	}
	if code, msg := chunk(t, url, rng(testChunk, total-1, total), accepted[testChunk:], true); code != http.StatusOK {
		t.Fatalf("last chunk: %d %s", code, msg)
	}
	if got := e.putAndRead(ref(url, "b", accepted)); !bytes.Equal(got, accepted) {
		t.Fatal("the blob read back is not the bytes its hash was recorded for")
	}
}
