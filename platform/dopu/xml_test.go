package dopu_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"dicomgate/dimse/dicomtest"
	"dicomgate/platform/dopu"
)

func TestDataXMLRoundTrip(t *testing.T) {
	for _, p := range []*dopu.Package{
		{Algorithm: dopu.HMACSHA256AES256, Salt: "0f8fad5b-d9cb-469f-a165-70867728950e", IterationCount: 20000, KeyLength: 256},
		{Algorithm: dopu.HMACSHA13DES, Salt: "a<b&c>\"d'", IterationCount: 1, KeyLength: 192},
	} {
		b, err := p.MarshalDataXML()
		if err != nil {
			t.Fatal(err)
		}
		q, err := dopu.UnmarshalDataXML(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if q.Algorithm != p.Algorithm || q.Salt != p.Salt || q.IterationCount != p.IterationCount || q.KeyLength != p.KeyLength || q.Ciphertext != nil {
			t.Errorf("round trip of %s: %+v, want %+v", b, q, p)
		}
	}
	want := `<password-protected-package><encrypt-algorithm><algorithm-name>hmac-sha256-aes256</algorithm-name><parameters><salt>0f8fad5b-d9cb-469f-a165-70867728950e</salt><iteration-count>20000</iteration-count><key-length>256</key-length></parameters></encrypt-algorithm></password-protected-package>`
	p := &dopu.Package{Algorithm: dopu.HMACSHA256AES256, Salt: "0f8fad5b-d9cb-469f-a165-70867728950e", IterationCount: 20000, KeyLength: 256}
	if b, _ := p.MarshalDataXML(); string(b) != want {
		t.Errorf("MarshalDataXML = %s\nwant %s", b, want)
	}
	bad := &dopu.Package{Algorithm: "rot13", Salt: "x", IterationCount: 1, KeyLength: 256}
	if _, err := bad.MarshalDataXML(); !errors.Is(err, dopu.ErrUnsupportedAlgorithm) {
		t.Errorf("marshal of unsupported algorithm: %v", err)
	}
}

func TestUnmarshalDataXML(t *testing.T) {
	const ok = `<password-protected-package><encrypt-algorithm><algorithm-name>hmac-sha256-aes256</algorithm-name><parameters><salt>s</salt><iteration-count>20000</iteration-count><key-length>256</key-length></parameters></encrypt-algorithm></password-protected-package>`
	good := []string{
		ok,
		`<?xml version="1.0" encoding="utf-8"?>` + "\n" + ok + "\n<!-- trailing comment -->",
		strings.Replace(strings.Replace(ok, "<password-protected-package>", `<p:password-protected-package xmlns:p="urn:com.microsoft.wc.thing.password.protected.package">`, 1), "</password-protected-package>", "</p:password-protected-package>", 1),
		"<password-protected-package>\n  <encrypt-algorithm>\n    <algorithm-name> hmac-sha1-3des </algorithm-name>\n    <parameters><salt>s</salt><iteration-count> 7 </iteration-count><key-length>168</key-length></parameters>\n  </encrypt-algorithm>\n</password-protected-package>",
		`<password-protected-package><encrypt-algorithm><algorithm-name>none</algorithm-name></encrypt-algorithm></password-protected-package>`,
		`<password-protected-package><encrypt-algorithm><algorithm-name>hmac-sha256-aes256</algorithm-name><parameters><salt>s</salt><iteration-count/><key-length>256</key-length></parameters></encrypt-algorithm></password-protected-package>`,
	}
	for _, in := range good {
		if _, err := dopu.UnmarshalDataXML([]byte(in)); err != nil {
			t.Errorf("UnmarshalDataXML(%s): %v", in, err)
		}
	}
	p, err := dopu.UnmarshalDataXML([]byte(good[5]))
	if err != nil || p.IterationCount != dopu.DefaultIterations {
		t.Errorf("empty iteration-count: %+v %v (schema default is 20000)", p, err)
	}
	bad := map[string]string{
		"empty":             ``,
		"wrong root":        `<package/>`,
		"root in other ns":  `<password-protected-package xmlns="urn:other"><encrypt-algorithm><algorithm-name>none</algorithm-name></encrypt-algorithm></password-protected-package>`,
		"child namespaced":  `<password-protected-package><encrypt-algorithm xmlns="urn:com.microsoft.wc.thing.password.protected.package"><algorithm-name>none</algorithm-name></encrypt-algorithm></password-protected-package>`,
		"unknown algorithm": strings.Replace(ok, "hmac-sha256-aes256", "rot13", 1),
		"order":             `<password-protected-package><encrypt-algorithm><algorithm-name>none</algorithm-name><parameters><key-length>1</key-length><salt>s</salt><iteration-count>1</iteration-count></parameters></encrypt-algorithm></password-protected-package>`,
		"duplicate":         strings.Replace(ok, "</key-length>", "</key-length><key-length>256</key-length>", 1),
		"extra element":     strings.Replace(ok, "</parameters>", "</parameters><extra/>", 1),
		"not int":           strings.Replace(ok, ">20000<", ">2e4<", 1),
		"int overflow":      strings.Replace(ok, ">20000<", ">99999999999<", 1),
		"nested in salt":    strings.Replace(ok, "<salt>s</salt>", "<salt><b>s</b></salt>", 1),
		"text in root":      strings.Replace(ok, "<encrypt-algorithm>", "junk<encrypt-algorithm>", 1),
		"truncated":         ok[:len(ok)-10],
		"two roots":         ok + ok,
		"doctype":           `<!DOCTYPE x [<!ENTITY a "aaaa">]>` + ok,
		"entity":            strings.Replace(ok, "<salt>s", "<salt>&a;", 1),
		"not xml":           "\x00\x01\x02",
		"mismatched tags":   strings.Replace(ok, "</salt>", "</sult>", 1),
		"too large":         strings.Replace(ok, "<salt>s", "<salt>"+strings.Repeat("s", dopu.MaxDataXMLSize), 1),
		"salt too long":     strings.Replace(ok, "<salt>s", "<salt>"+strings.Repeat("s", dopu.MaxSaltLength+1), 1),
		"pi":                `<?php x?>` + ok,
	}
	for name, in := range bad {
		_, err := dopu.UnmarshalDataXML([]byte(in))
		var fe *dopu.FormatError
		if !errors.As(err, &fe) || !(errors.Is(err, dopu.ErrMalformedPackage) || errors.Is(err, dopu.ErrUnsupportedAlgorithm)) {
			t.Errorf("%s: err = %v, want *FormatError", name, err)
		}
	}
}

// schemaPath finds ../shared/healthvault/xsd from the module root.
func schemaPath(t *testing.T, name string) string {
	t.Helper()
	return dicomtest.RequireFile(t, filepath.Join("..", "..", "..", "shared", "healthvault", "xsd", name))
}

// TestDataXMLValidatesAgainstSchema validates MarshalDataXML output with
// xmllint against password-protected-package.xsd; the root goes into the
// schema's target namespace and children stay unqualified (SPEC §10).
func TestDataXMLValidatesAgainstSchema(t *testing.T) {
	xmllint := dicomtest.LookPath(t, "xmllint")
	xsd := schemaPath(t, "password-protected-package.xsd")
	dir := t.TempDir()
	for i, alg := range []dopu.Algorithm{dopu.HMACSHA256AES256, dopu.HMACSHA13DES} {
		p, err := dopu.Seal("schema check", []byte(sampleThings), alg, detRand(uint64(10+i)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.MarshalDataXML()
		if err != nil {
			t.Fatal(err)
		}
		doc := forValidation(b)
		f := filepath.Join(dir, string(alg)+".xml")
		if err := os.WriteFile(f, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmllint, "--noout", "--schema", xsd, f).CombinedOutput()
		if err != nil {
			t.Errorf("%s does not validate: %v\n%s\n%s", alg, err, out, doc)
		}
	}
	// The validation must be able to fail: a wrong element order is refused.
	f := filepath.Join(dir, "bad.xml")
	bad := forValidation([]byte(`<password-protected-package><encrypt-algorithm><parameters><salt>s</salt><iteration-count>1</iteration-count><key-length>256</key-length></parameters><algorithm-name>none</algorithm-name></encrypt-algorithm></password-protected-package>`))
	if err := os.WriteFile(f, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--schema", xsd, f).CombinedOutput(); err == nil {
		t.Errorf("xmllint accepted an invalid document:\n%s", out)
	}
}

func forValidation(b []byte) []byte {
	b = bytes.Replace(b, []byte("<password-protected-package>"),
		[]byte(`<ppp:password-protected-package xmlns:ppp="`+dopu.Namespace+`">`), 1)
	return bytes.Replace(b, []byte("</password-protected-package>"), []byte("</ppp:password-protected-package>"), 1)
}
