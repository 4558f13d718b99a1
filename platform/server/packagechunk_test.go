package server_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
)

// TestPackageChunkResentWithOtherBytes sends an encrypted chunk of a
// package blob again with other bytes: the resend is refused and must not
// have touched the acknowledged bytes, so the blob still completes.
func TestPackageChunkResentWithOtherBytes(t *testing.T) {
	e := newEnv(t)
	var p struct {
		URL  string `xml:"blob-ref-url"`
		Post int64  `xml:"blob-post-encryption-chunk-size"`
	}
	if err := e.client.Call(context.Background(), "BeginPutConnectPackageBlob", 1, "", nil, &p); err != nil {
		t.Fatal(err)
	}
	if p.URL == "" || p.Post <= 0 {
		t.Fatalf("BeginPutConnectPackageBlob = %+v", p)
	}
	first := pattern(int(p.Post), 7)
	last := pattern(64, 8)
	total := int(p.Post) + len(last)
	if code, msg := chunk(t, p.URL, rng(0, int(p.Post)-1, total), first, false); code != http.StatusOK {
		t.Fatalf("first chunk: %d %s", code, msg)
	}
	// Same bytes again: fine.
	if code, msg := chunk(t, p.URL, rng(0, int(p.Post)-1, total), first, false); code != http.StatusOK {
		t.Fatalf("first chunk again: %d %s", code, msg)
	}
	other := bytes.Clone(first)
	other[len(other)/2] ^= 0xff
	if code, msg := chunk(t, p.URL, rng(0, int(p.Post)-1, total), other, false); code != http.StatusConflict {
		t.Fatalf("first chunk with other bytes: %d %s, want 409", code, msg)
	}
	if code, msg := chunk(t, p.URL, rng(int(p.Post), total-1, total), last, true); code != http.StatusOK {
		t.Fatalf("last chunk and complete after a refused resend: %d %s", code, msg)
	}
}
