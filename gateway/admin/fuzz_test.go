package admin

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The flash cookie comes back from the browser: hostile input.
func FuzzFlashCookie(f *testing.F) {
	f.Add(encodeFlash("Routing rules saved and applied."))
	f.Add("")
	f.Add("%%%")
	f.Add(strings.Repeat("A", 2000))
	f.Fuzz(func(t *testing.T, v string) {
		msg := decodeFlash(v)
		if !utf8.ValidString(msg) || len(msg) > maxFlashLen*2 {
			t.Fatalf("decodeFlash(%q) = %q", v, msg)
		}
		if got := decodeFlash(encodeFlash(msg)); len(msg) <= maxFlashLen && got != msg {
			t.Fatalf("round trip of %q gave %q", msg, got)
		}
	})
}

// next= is attacker-controlled: it must never leave the site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/studies/1.2.3", "//evil.example", "/\\evil.example", "https://evil.example", "", "javascript:alert(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, n string) {
		got := safeNext(n)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") || len(got) > 512 {
			t.Fatalf("safeNext(%q) = %q", n, got)
		}
	})
}

// Stored hashes are parsed with bounds so a tampered row cannot make a
// sign-in allocate without limit.
func FuzzCheckPassword(f *testing.F) {
	h, err := HashPassword("correct horse battery", Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h, "correct horse battery")
	f.Add("$argon2id$v=19$m=1048577,t=1,p=1$c2FsdHNhbHQ$"+strings.Repeat("A", 43), "x")
	f.Add("$argon2id$v=19$m=64,t=1,p=1,x=2$c2FsdHNhbHQ$"+strings.Repeat("A", 43), "x")
	f.Add("$$$$$", "")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		p, _, _, err := decodeHash(encoded)
		if err != nil {
			return
		}
		if p.Memory > 4096 || p.Time > 4 {
			return // valid but too slow for fuzzing; bounds are checked above
		}
		CheckPassword(encoded, pw)
	})
}
