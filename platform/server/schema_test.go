package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"dicomgate/platform/blob"
	"dicomgate/platform/client"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// schemaDir finds ../shared/healthvault/xsd from the module root.
func schemaDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("DICOMGATE_SHARED"); d != "" {
		return filepath.Join(d, "healthvault", "xsd")
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "healthvault", "xsd")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root not found")
		}
		dir = parent
	}
}

func requirePeer(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
		t.Fatalf("%s required: %v", what, err)
	}
	t.Skipf("%s not available: %v", what, err)
}

// methodSchema names the schema files of one method's request and response
// info and the request info's target namespace; "" where there is none.
type methodSchema struct{ reqXSD, reqNS, respXSD string }

// schemas names, per method, the schema and namespace of request and
// response info (SPEC §10); "" where the official schemas have none.
var schemas = map[string]methodSchema{
	"CreateAuthenticatedSessionToken": {"method-createauthenticatedsessiontoken2.xsd", wire.RequestNamespacePrefix + "CreateAuthenticatedSessionToken2", "response-createauthenticatedsessiontoken2.xsd"},
	"PutThings":                       {"method-putthings2.xsd", wire.RequestNamespacePrefix + "PutThings2", "response-putthings.xsd"},
	"GetThings":                       {"method-getthings3.xsd", wire.RequestNamespacePrefix + "GetThings3", "response-getthings3.xsd"},
	"RemoveThings":                    {"method-removethings.xsd", wire.RequestNamespacePrefix + "RemoveThings", ""},
	"BeginPutBlob":                    {"", "", "response-beginputblob.xsd"},
}

// TestWireValidatesAgainstSchemas runs every method through the client
// and validates each request info and response info with xmllint.
func TestWireValidatesAgainstSchemas(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		requirePeer(t, "xmllint", err)
	}
	xsd := schemaDir(t)
	if _, err := os.Stat(filepath.Join(xsd, "thing.xsd")); err != nil {
		requirePeer(t, "HealthVault schemas", err)
	}
	e := newEnv(t)
	ctx := context.Background()

	// Every method, with every thing part dicomgate writes.
	dicom := e.upload(pattern(2*testChunk+3, 1), "1.2.3.4.1", "application/dicom")
	st := newStudy("1.2.840.5", "schema", dicom)
	jpeg, _ := base64.StdEncoding.DecodeString("/9j/4AAQ")
	st.SetBlob(thing.Blob{Info: thing.BlobInfo{Name: "preview", ContentType: "image/jpeg", HashInfo: sha256Block(jpeg, blob.DefaultBlockSize)},
		Base64Data: "/9j/4AAQ"})
	var flags uint32 = 0
	st.Flags = &flags
	st.Tags = "ct"
	if err := thing.Sign(st, e.creds.Key, e.creds.Cert, 0); err != nil {
		t.Fatal(err)
	}
	keys, err := e.client.PutThings(ctx, e.record, st)
	if err != nil {
		t.Fatal(err)
	}
	g := client.StudyQuery(misType, "1.2.840.5")
	g.Name = "study"
	g.Format.Sections = append(g.Format.Sections, wire.SectionAudits, wire.SectionTags, wire.SectionEffectivePermissions)
	one := 1
	g.MaxFull = &one
	info := &wire.BlobPayloadRequest{BlobFilters: &wire.BlobFilters{Filters: []struct {
		BlobName string `xml:"blob-name"`
	}{{BlobName: "preview"}}}}
	info.BlobFormat.Spec = wire.BlobFormatInformation
	if _, err := e.client.GetThings(ctx, e.record, g, wire.ThingRequestGroup{
		Filters: []wire.ThingFilter{{TypeIDs: []string{misType}}},
		Format:  wire.ThingFormat{Sections: []string{wire.SectionBlobPayload}, BlobPayloadRequest: info},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.PutThings(ctx, e.record, newStudy("1.2.840.6", "second")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetThings(ctx, e.record, wire.ThingRequestGroup{MaxFull: &one,
		Filters: []wire.ThingFilter{{TypeIDs: []string{misType}, States: []string{thing.StateActive}}},
		Format:  wire.ThingFormat{Sections: []string{wire.SectionCore}, XML: []string{""}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.RemoveThings(ctx, e.record, keys...); err != nil {
		t.Fatal(err)
	}

	validateExchanges(t, xmllint, xsd, e.rec.exchanges(), schemas, false)
}

// validateExchanges writes the request and response info of each recorded
// exchange to files, validates them with xmllint against the schemas its
// method names in schemas, and fails if a method of schemas was never
// exercised. With subset false, schemas must name every method called and
// failed calls are passed over (their info is not what the schemas
// describe); with subset true, methods outside schemas are passed over and
// every call of a method in schemas must succeed.
func validateExchanges(t *testing.T, xmllint, xsd string, exchanges []exchange, schemas map[string]methodSchema, subset bool) {
	t.Helper()
	dir := t.TempDir()
	byXSD := map[string][]string{}
	seen := map[string]bool{}
	for i, x := range exchanges {
		req, err := wire.ParseRequest(x.req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := wire.ParseResponse(x.resp)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		s, ok := schemas[req.Header.Method]
		switch {
		case subset && !ok:
			continue
		case subset && resp.Code != wire.OK:
			t.Fatalf("%s failed: %s", req.Header.Method, resp.Message)
		case !subset && resp.Code != wire.OK:
			continue
		case !ok:
			t.Fatalf("no schema entry for %s", req.Header.Method)
		}
		seen[req.Header.Method] = true
		if s.reqXSD != "" {
			doc := qualify(req.InfoRaw, s.reqNS)
			byXSD[s.reqXSD] = append(byXSD[s.reqXSD], write(t, dir, req.Header.Method+"-req", i, doc))
		}
		if s.respXSD != "" {
			info := wire.FindRaw(x.resp, "response", "info")
			if info == nil {
				t.Fatalf("%s response has no info", req.Header.Method)
			}
			byXSD[s.respXSD] = append(byXSD[s.respXSD], write(t, dir, req.Header.Method+"-resp", i, info))
		}
	}
	for m := range schemas {
		if !seen[m] {
			t.Errorf("method %s not exercised", m)
		}
	}
	for schema, files := range byXSD {
		args := append([]string{"--noout", "--nonet", "--schema", filepath.Join(xsd, schema)}, files...)
		out, err := exec.Command(xmllint, args...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", schema, err, out)
		}
	}
}

// qualify puts a request's <info> root into the schema's target namespace,
// leaving children unqualified (SPEC §10).
func qualify(info []byte, ns string) []byte {
	if bytes.HasPrefix(info, []byte("<info/>")) {
		return []byte(`<wc:info xmlns:wc="` + ns + `"/>`)
	}
	b := bytes.Replace(info, []byte("<info>"), []byte(`<wc:info xmlns:wc="`+ns+`">`), 1)
	return append(bytes.TrimSuffix(b, []byte("</info>")), "</wc:info>"...)
}

func write(t *testing.T, dir, name string, i int, doc []byte) string {
	t.Helper()
	p := filepath.Join(dir, strings.ToLower(name)+"-"+strconv.Itoa(i)+".xml")
	if err := os.WriteFile(p, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
