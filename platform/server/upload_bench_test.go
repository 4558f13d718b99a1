package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkChunkRequest measures the per-request work of a chunk POST
// without the disk: a chunk sent again with the same bytes is hashed and
// compared, never written or synced.
func BenchmarkChunkRequest(b *testing.B) {
	for _, kind := range []string{"record", "package"} {
		b.Run(kind, func(b *testing.B) {
			e := newEnv(b)
			url, data := benchBlob(b, e, kind)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(data))
				req.Header.Set("Content-Range", rng(0, len(data)-1, -1))
				w := httptest.NewRecorder()
				e.srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

func benchBlob(b *testing.B, e *env, kind string) (string, []byte) {
	var url string
	var size int
	if kind == "record" {
		url, size = e.begin(), testChunk
	} else {
		var p struct {
			URL  string `xml:"blob-ref-url"`
			Post int64  `xml:"blob-post-encryption-chunk-size"`
		}
		if err := e.client.Call(context.Background(), "BeginPutConnectPackageBlob", 1, "", nil, &p); err != nil {
			b.Fatal(err)
		}
		url, size = p.URL, int(p.Post)
	}
	data := pattern(size, 1)
	if code, msg := chunk(b, url, rng(0, size-1, -1), data, false); code != http.StatusOK {
		b.Fatalf("%d %s", code, msg)
	}
	return url, data
}
