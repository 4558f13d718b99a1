package dopu_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"dicomgate/platform/dopu"
)

var update = flag.Bool("update", false, "rewrite the golden packages in testdata/")

// goldenAnswer opens the golden packages in testdata/ (see PROVENANCE.md).
const goldenAnswer = "Golden Retriever"

var goldenAlgs = []dopu.Algorithm{dopu.HMACSHA256AES256, dopu.HMACSHA13DES}

func goldenPaths(alg dopu.Algorithm) (dataXML, ciphertext string) {
	base := filepath.Join("testdata", string(alg))
	return base + ".data.xml", base + ".ciphertext.bin"
}

func loadGolden(t testing.TB, alg dopu.Algorithm) *dopu.Package {
	t.Helper()
	x, c := goldenPaths(alg)
	xb, err := os.ReadFile(x)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dopu.UnmarshalDataXML(xb)
	if err != nil {
		t.Fatal(err)
	}
	if p.Ciphertext, err = os.ReadFile(c); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGolden opens packages sealed by an earlier version of this code, so a
// change to the format cannot slip through a round trip that agrees with
// itself. Run with -update to regenerate (only for an intended change).
func TestGolden(t *testing.T) {
	things, err := os.ReadFile(filepath.Join("testdata", "things.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, alg := range goldenAlgs {
		if *update {
			p, err := dopu.Seal(goldenAnswer, things, alg, detRand(uint64(100+i)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := p.MarshalDataXML()
			if err != nil {
				t.Fatal(err)
			}
			x, c := goldenPaths(alg)
			if err := os.WriteFile(x, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c, p.Ciphertext, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p := loadGolden(t, alg)
		got, err := dopu.Open(goldenAnswer, p)
		if err != nil || !bytes.Equal(got, things) {
			t.Errorf("%s: golden package: %v", alg, err)
		}
		if got := independentOpen(t, goldenAnswer, p); !bytes.Equal(got, things) {
			t.Errorf("%s: golden package, independent path differs", alg)
		}
	}
}
