package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dicomgate/platform/blob"
	"dicomgate/platform/client"
	"dicomgate/platform/platformtest"
	"dicomgate/platform/thing"
)

const misType = "c75651c8-548e-449f-8942-9e6379b0b88a"

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13 + i/251)
	}
	return b
}

func study(uid string, b thing.Blob) *thing.Thing {
	t := &thing.Thing{Type: &thing.TypeID{ID: misType}}
	t.SetData([]byte(`<medical-image-study><study-instance-uid>` + uid + `</study-instance-uid></medical-image-study>`))
	t.SetBlob(b)
	return t
}

// TestResumeInAnotherClient persists the upload state as JSON, as a
// gateway would across a restart, and finishes with a new client.
func TestResumeInAnotherClient(t *testing.T) {
	p := platformtest.Start(t, platformtest.Options{ChunkSize: 1024})
	ctx := context.Background()
	src := data(10*1024 + 100)
	u, err := p.Client.BeginPutBlob(ctx, p.RecordID)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Client.Send(ctx, u, io.MultiReader(bytes.NewReader(src[:4096+10]), errReader{})); err == nil {
		t.Fatal("broken source did not fail the upload")
	}
	if u.Acked != 4096 {
		t.Fatalf("acked %d, want 4096", u.Acked)
	}
	saved, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var restored client.Upload
	if err := json.Unmarshal(saved, &restored); err != nil {
		t.Fatal(err)
	}
	c2, err := client.New(client.Config{URL: p.URL, Credentials: p.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Send(ctx, &restored, bytes.NewReader(src[restored.Acked:])); err != nil {
		t.Fatal(err)
	}
	b, err := restored.Blob("img", "application/dicom")
	if err != nil {
		t.Fatal(err)
	}
	h := blob.NewHasher(1024)
	h.Write(src)
	if want, _ := h.RootBase64(); b.Info.HashInfo.Hash != want || b.Length() != int64(len(src)) {
		t.Fatalf("hash-info %+v, length %d", b.Info.HashInfo, b.Length())
	}
	if _, err := c2.PutThings(ctx, p.RecordID, study("1.1", b)); err != nil {
		t.Fatal(err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

func TestEmptyBlobRefused(t *testing.T) {
	p := platformtest.Start(t, platformtest.Options{})
	_, err := p.Client.UploadBlob(context.Background(), p.RecordID, "x", "x/y", bytes.NewReader(nil))
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestBlobTooLarge(t *testing.T) {
	p := platformtest.Start(t, platformtest.Options{ChunkSize: 1024, MaxBlobSize: 4096})
	_, err := p.Client.UploadBlob(context.Background(), p.RecordID, "x", "x/y", bytes.NewReader(data(5000)))
	if !errors.Is(err, client.ErrBlobTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

// cutTransport breaks the first blob download after n bytes.
type cutTransport struct {
	n      int64
	cut    atomic.Bool
	ranges atomic.Int64
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet {
		return resp, err
	}
	if r.Header.Get("Range") != "" {
		c.ranges.Add(1)
	}
	if c.cut.CompareAndSwap(false, true) {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(io.LimitReader(resp.Body, c.n), errReader{}), resp.Body}
	}
	return resp, nil
}

func TestDownloadResumesWithRange(t *testing.T) {
	p := platformtest.Start(t, platformtest.Options{ChunkSize: 1024})
	ctx := context.Background()
	src := data(5000)
	b, err := p.Client.UploadBlob(ctx, p.RecordID, "img", "application/dicom", bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client.PutThings(ctx, p.RecordID, study("2.2", b)); err != nil {
		t.Fatal(err)
	}
	groups, err := p.Client.GetThings(ctx, p.RecordID, client.StudyQuery(misType, "2.2"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &cutTransport{n: 1500}
	c, err := client.New(client.Config{URL: p.URL, Credentials: p.Credentials, Backoff: time.Millisecond,
		HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	n, err := c.DownloadBlob(ctx, groups[0].Things[0].Blob("img").RefURL, &got)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(src)) || !bytes.Equal(got.Bytes(), src) || tr.ranges.Load() != 1 {
		t.Fatalf("n %d, equal %v, ranged requests %d", n, bytes.Equal(got.Bytes(), src), tr.ranges.Load())
	}
}

// countingTransport counts session creations.
type countingTransport struct{ sessions atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.HasSuffix(r.URL.Path, "wildcat.ashx") {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(b, []byte("<method>CreateAuthenticatedSessionToken</method>")) {
			c.sessions.Add(1)
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestSessionRenewedProactively(t *testing.T) {
	p := platformtest.Start(t, platformtest.Options{})
	now := time.Now()
	var offset atomic.Int64
	tr := &countingTransport{}
	c, err := client.New(client.Config{URL: p.URL, Credentials: p.Credentials, SessionLifetime: time.Minute,
		HTTPClient: &http.Client{Transport: tr},
		Now:        func() time.Time { return now.Add(time.Duration(offset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.GetThings(ctx, p.RecordID, client.StudyQuery(misType, "x")); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			offset.Store(int64(2 * time.Minute))
		}
	}
	if got := tr.sessions.Load(); got != 2 {
		t.Fatalf("%d sessions, want 2 (one renewal)", got)
	}
}
