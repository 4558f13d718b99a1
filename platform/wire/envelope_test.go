package wire

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRequestTestdata(t *testing.T) {
	tests := []struct {
		file   string
		method string
		code   Code
	}{
		{"getthings.xml", "GetThings", OK},
		{"beginputblob.xml", "BeginPutBlob", OK},
		{"cast.xml", "CreateAuthenticatedSessionToken", OK},
		{"doctype.xml", "", InvalidXML},
		{"misordered.xml", "", InvalidXML},
	}
	for _, tc := range tests {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRequest(b)
		if CodeOf(err) != tc.code {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if err != nil {
			continue
		}
		if r.Header.Method != tc.method {
			t.Fatalf("%s: method %q", tc.file, r.Header.Method)
		}
		if !bytes.HasPrefix(r.HeaderRaw, []byte("<header>")) || !bytes.HasSuffix(r.HeaderRaw, []byte("</header>")) ||
			!bytes.HasPrefix(r.InfoRaw, []byte("<info")) {
			t.Fatalf("%s: raw parts %q / %q", tc.file, r.HeaderRaw, r.InfoRaw)
		}
	}
}

func TestParseRequestRefusals(t *testing.T) {
	deep := "<info>" + strings.Repeat("<a>", MaxDepth) + strings.Repeat("</a>", MaxDepth) + "</info>"
	h := "<header><method>M</method><method-version>1</method-version></header>"
	req := func(inner string) string {
		return `<wc-request:request xmlns:wc-request="urn:com.microsoft.wc.request">` + inner + `</wc-request:request>`
	}
	tests := map[string]string{
		"empty":          "",
		"wrong root":     "<request>" + h + "<info/></request>",
		"no header":      req("<info/>"),
		"no info":        req(h),
		"repeated":       req(h + h + "<info/>"),
		"unknown child":  req(h + "<extra/><info/>"),
		"text":           req("text" + h + "<info/>"),
		"too deep":       req(h + deep),
		"two roots":      req(h+"<info/>") + "<x/>",
		"pi":             `<?evil x?>` + req(h+"<info/>"),
		"bad entity":     req("<header><method>&foo;</method></header><info/>"),
		"no method":      req("<header></header><info/>"),
		"truncated":      req(h + "<info>"),
		"bad msg-time":   req("<header><method>M</method><msg-time>yesterday</msg-time></header><info/>"),
		"qualified info": req(h + `<x:info xmlns:x="urn:x"/>`),
	}
	for name, doc := range tests {
		_, err := ParseRequest([]byte(doc))
		if CodeOf(err) != InvalidXML {
			t.Errorf("%s: %v, want INVALID_XML", name, err)
		}
	}
}

func TestBuildAndVerify(t *testing.T) {
	secret := []byte("shared secret")
	info := []byte("<info><x>1</x></info>")
	h := Header{Method: "GetThings", MethodVersion: 3, RecordID: "r", AuthSession: &AuthSession{AuthToken: "t"},
		MsgTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), MsgTTL: 60, Version: Version}
	b, err := BuildRequest(h, info, secret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.InfoRaw, info) || r.Header.RecordID != "r" || !r.Header.MsgTime.Equal(h.MsgTime) {
		t.Fatalf("parsed %+v", r)
	}
	if err := r.VerifyInfoHash(); err != nil {
		t.Fatal(err)
	}
	if err := r.VerifyHMAC(secret); err != nil {
		t.Fatal(err)
	}
	if CodeOf(r.VerifyHMAC([]byte("other"))) != BadSig {
		t.Fatal("HMAC with another secret verified")
	}
	r.InfoRaw = []byte("<info><x>2</x></info>")
	if CodeOf(r.VerifyInfoHash()) != BadSig {
		t.Fatal("changed info verified")
	}
}

func TestResponses(t *testing.T) {
	ok, err := MarshalResponse(NSPutThings, &PutThingsResponse{})
	if err != nil {
		t.Fatal(err)
	}
	want := `<response><status><code>0</code></status><wc:info xmlns:wc="urn:com.microsoft.wc.methods.response.PutThings"></wc:info></response>`
	if string(ok) != want {
		t.Fatalf("got %s", ok)
	}
	r, err := ParseResponse(ok)
	if err != nil || r.Code != OK || r.InfoNamespace != NSPutThings {
		t.Fatalf("%+v, %v", r, err)
	}
	e := MarshalError(Errorf(AccessDenied, "no <access> & no way"))
	r, err = ParseResponse(e)
	if err != nil || r.Code != AccessDenied || r.Message != "no <access> & no way" {
		t.Fatalf("%+v, %v", r, err)
	}
	if CodeOf(r.Err()) != AccessDenied {
		t.Fatal("Err lost the code")
	}
}

func TestFindRaw(t *testing.T) {
	doc := []byte(`<info><a><b>x</b><c><d k="v">y</d></c></a></info>`)
	if got := string(FindRaw(doc, "info", "a", "c", "d")); got != `<d k="v">y</d>` {
		t.Fatalf("got %q", got)
	}
	if FindRaw(doc, "info", "d") != nil {
		t.Fatal("found a non-child")
	}
}

func FuzzParseRequest(f *testing.F) {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		f.Fatal("no seeds")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			if CodeOf(err) != InvalidXML {
				t.Fatalf("error %v is not INVALID_XML", err)
			}
			return
		}
		if !bytes.Contains(b, r.HeaderRaw) || !bytes.Contains(b, r.InfoRaw) {
			t.Fatal("raw parts are not slices of the input")
		}
		_ = r.VerifyInfoHash()
		_ = r.VerifyHMAC([]byte("k"))
	})
}

// FuzzParseResponse feeds untrusted response documents (what the client
// reads) to the response parser.
func FuzzParseResponse(f *testing.F) {
	ok, _ := MarshalResponse(NSPutThings, &PutThingsResponse{})
	f.Add(ok)
	f.Add(MarshalError(Errorf(AccessDenied, "no")))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err == nil && r.Code == OK && r.Err() != nil {
			t.Fatal("OK response with an error")
		}
	})
}
