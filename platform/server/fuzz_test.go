package server

import (
	"testing"
	"time"
)

// FuzzIndexKeys feeds untrusted data-xml content to the key extraction.
func FuzzIndexKeys(f *testing.F) {
	f.Add([]byte(`<medical-image-study><when/><study-instance-uid>1.2.3</study-instance-uid></medical-image-study><common/>`))
	f.Add([]byte(`<a><b><c>x</c></b><d>y</d><d>z</d></a>`))
	f.Add([]byte(`<a><b>` + string(make([]byte, 300)) + `</b>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, v := range indexKeys(b) {
			if len(v) > maxKeyValue || k == "" {
				t.Fatalf("key %q = %q", k, v)
			}
		}
	})
}

// FuzzParseXPath feeds untrusted GetThings xpath filters to the parser.
func FuzzParseXPath(f *testing.F) {
	f.Add(`/thing/data-xml/medical-image-study/study-instance-uid[.="1.2.3"]`)
	f.Add(`/thing/data-xml/weight/value/kg[. > 150]`)
	f.Add(`/thing/data-xml/a/b[ . = 'x' ]`)
	f.Fuzz(func(t *testing.T, x string) {
		p, _, err := parseXPath(x)
		if err == nil && p == "" {
			t.Fatal("empty path accepted")
		}
	})
}

// FuzzBlobToken feeds untrusted blob-ref-token values to the token check.
func FuzzBlobToken(f *testing.F) {
	s := &Server{tokenKey: make([]byte, 32)}
	now := time.Unix(1_800_000_000, 0)
	f.Add(s.signToken(blobToken{Kind: tokenRead, BlobID: "b", RecordID: "r", Expires: now.Unix() + 60}))
	f.Add("e30.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := s.parseToken(tok, now)
		if err == nil && got.Expires <= now.Unix() {
			t.Fatal("expired token accepted")
		}
	})
}
