package server_test

import (
	"strings"
	"testing"

	"dicomgate/platform/server"
)

// FuzzNormalizeIdentityCode: a typed code is hostile input; the result is
// either refused or a canonical code that normalizes to itself.
func FuzzNormalizeIdentityCode(f *testing.F) {
	for _, s := range []string{"JKYZ-QNMN-VHRX-ZGNR-GZNH", "jkyz qnmn vhrx zgnr gznh", "JKYZQNMNVHRXZGNRGZNH", "", "----", "ÄÖÜ", strings.Repeat("B", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		code, ok := server.NormalizeIdentityCode(typed)
		if !ok {
			return
		}
		if len(code) != 24 || strings.Count(code, "-") != 4 {
			t.Fatalf("%q normalized to %q", typed, code)
		}
		again, ok := server.NormalizeIdentityCode(code)
		if !ok || again != code {
			t.Fatalf("%q is not a fixed point (%q)", code, again)
		}
	})
}
