package dimse

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/dicomtest"
)

// Interoperability tests against DCMTK, the toolkit modalities and PACS
// behave like. Every DCMTK process runs with TCP_NODELAY=1 (without it each
// round trip stalls on Nagle's algorithm).

// dcmtk runs the DCMTK program name, skipping the test when it is absent
// (failing instead when DICOMGATE_REQUIRE_PEERS=1).
func dcmtk(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := dicomtest.Command(dicomtest.LookPath(t, name), args...).CombinedOutput()
	return string(out), err
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// startStorescp runs DCMTK storescp, bit-preserving (+B: it writes the data
// set exactly as received) and accepting every transfer syntax (+xa). It
// returns its address and output directory.
func startStorescp(t *testing.T) (string, string) {
	t.Helper()
	bin := dicomtest.LookPath(t, "storescp")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := dicomtest.Command(bin, "-aet", "STORESCP", "+B", "+xa", "-od", dir, strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, dir
		}
		if time.Now().After(deadline) {
			t.Fatalf("storescp did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// part10DataSet returns the data set bytes of a Part 10 file (everything
// after the file meta information).
func part10DataSet(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if _, _, err := dataset.ReadFileMeta(br); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storescuOption is the storescu flag that makes it propose a file's own
// transfer syntax (storescu proposes only uncompressed ones by default).
var storescuOption = map[string]string{
	dataset.ImplicitVRLittleEndian:         "-xi",
	dataset.ExplicitVRBigEndian:            "-xb",
	dataset.DeflatedExplicitVRLittleEndian: "-xd",
	dataset.JPEGBaseline8Bit:               "-xy",
	dataset.JPEGExtended12Bit:              "-xx",
	dataset.JPEGLosslessSV1:                "-xs",
	dataset.JPEGLSLossless:                 "-xt",
	dataset.JPEGLSNearLossless:             "-xu",
	dataset.JPEG2000Lossless:               "-xv",
	dataset.JPEG2000:                       "-xw",
	dataset.RLELossless:                    "-xr",
}

// storescuRefuses lists the corpus files storescu itself does not send
// (so there is nothing to compare), with the reason. The test checks that
// storescu fails on them against the reference storescp too.
var storescuRefuses = map[string]string{
	"ExplVR_BigEndNoMeta.dcm":  "no meta header: storescu guesses the SOP class and finds no context",
	"ExplVR_LitEndNoMeta.dcm":  "no meta header: storescu guesses the SOP class and finds no context",
	"no_meta.dcm":              "no meta header, unreadable",
	"MR_truncated.dcm":         "truncated pixel data",
	"rtplan_truncated.dcm":     "truncated sequence",
	"SC_rgb_jpeg.dcm":          "meta header says JPEG, data set is not readable as such",
	"UN_sequence.dcm":          "no SOP Class/Instance UID",
	"empty_charset_LEI.dcm":    "no SOP Class/Instance UID",
	"meta_missing_tsyntax.dcm": "no SOP Class/Instance UID",
	"nested_priv_SQ.dcm":       "no SOP Class/Instance UID",
	"no_meta_group_length.dcm": "no SOP Class/Instance UID",
	"priv_SQ.dcm":              "no SOP Class/Instance UID",
	"rtdose_rle.dcm":           "no SOP Class/Instance UID",
	"rtdose_rle_1frame.dcm":    "no SOP Class/Instance UID",
	"liver_1frame.dcm":         "storescu's built-in list lacks Segmentation Storage",
	"liver_expb_1frame.dcm":    "storescu's built-in list lacks Segmentation Storage",
}

func TestDCMTKEchoscu(t *testing.T) {
	ts := startServer(t, nil)
	h, p := hostPort(t, ts.addr)
	if out, err := dcmtk(t, "echoscu", "-aec", "DICOMGATE", h, p); err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
	out, err := dcmtk(t, "echoscu", "-aec", "WRONG", h, p)
	if err == nil || !strings.Contains(out, "Called AE Title Not Recognized") {
		t.Fatalf("echoscu with a wrong called AE: %v\n%s", err, out)
	}
}

// TestDCMTKStorescuCorpus sends every corpus file with storescu, in its own
// transfer syntax, to dicomgate and to a bit-preserving storescp: dicomgate's
// stored data set must be byte-identical to what storescp received. (storescu
// re-encodes some files, e.g. turning undefined-length sequences into
// explicit ones, so the wire bytes, not the original file, are the
// reference; TestClientToStorescp and the send/serve test in cmd/dicomgate
// check originals byte for byte.)
func TestDCMTKStorescuCorpus(t *testing.T) {
	files := dicomtest.CorpusFiles(t)
	ts := startServer(t, nil)
	scpAddr, scpDir := startStorescp(t)
	h, p := hostPort(t, ts.addr)
	sh, sp := hostPort(t, scpAddr)
	stored, identical := 0, 0
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			args := []string{"-aec", "DICOMGATE"}
			if m, err := dataset.ReadFileMetaFile(f); err == nil {
				if opt := storescuOption[m.TransferSyntaxUID]; opt != "" {
					args = append(args, opt)
				}
			} else {
				args = append(args, "-xi") // no meta header: DCMTK reads implicit VR
			}
			t.Cleanup(func() {
				// The corpus repeats SOP Instance UIDs: start each file
				// from empty directories.
				left, _ := filepath.Glob(filepath.Join(scpDir, "*"))
				more, _ := filepath.Glob(filepath.Join(ts.spool.Dir(), "*"))
				for _, f := range append(left, more...) {
					_ = os.Remove(f)
				}
			})
			outDG, errDG := dcmtk(t, "storescu", append(args, h, p, f)...)
			args[1] = "STORESCP"
			outSCP, errSCP := dcmtk(t, "storescu", append(args, sh, sp, f)...)
			if reason, ok := storescuRefuses[name]; ok {
				if errSCP == nil {
					t.Fatalf("storescu was expected to refuse (%s) but sent it to storescp", reason)
				}
				if errDG == nil {
					t.Fatalf("storescu refused it towards storescp but not towards dicomgate")
				}
				t.Logf("storescu refuses it: %s", reason)
				return
			}
			if errSCP != nil {
				t.Fatalf("storescu -> storescp failed: %v\n%s", errSCP, outSCP)
			}
			if errDG != nil {
				t.Fatalf("storescu -> dicomgate failed: %v\n%s", errDG, outDG)
			}
			ref := onlyFile(t, scpDir)
			uid := uidOfStorescpFile(t, ref)
			got := part10DataSet(t, ts.spool.PathOf(uid))
			want := part10DataSet(t, ref)
			if !bytes.Equal(got, want) {
				t.Fatalf("data set differs from storescp's bit-preserved copy (%d vs %d bytes)", len(got), len(want))
			}
			stored++
			if _, err := dataset.ReadFileMetaFile(f); err == nil && bytes.Equal(got, part10DataSet(t, f)) {
				identical++
			}
		})
	}
	t.Logf("%d files stored identical to storescp's copy, %d of them identical to the original file", stored, identical)
	if stored < 40 {
		t.Fatalf("only %d corpus files stored", stored)
	}
	inst, tmp := spoolFiles(t, ts)
	if len(inst) != 0 || len(tmp) != 0 {
		t.Fatalf("spool not clean: %v %v", inst, tmp)
	}
}

func onlyFile(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("storescp directory holds %d files, want 1", len(files))
	}
	return files[0]
}

func uidOfStorescpFile(t *testing.T, path string) string {
	t.Helper()
	m, err := dataset.ReadFileMetaFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return m.MediaStorageSOPInstanceUID
}

// TestDCMTKPDUSizes sends the 7.5 MB CR and two other files with storescu
// announcing a 4096-byte receive PDU, and restricted to 4096-byte send PDUs:
// the stored data sets must equal those of a default-PDU run.
func TestDCMTKPDUSizes(t *testing.T) {
	files := dicomtest.CorpusFiles(t)[:6] // suyashkumar/dicom 1.dcm..6.dcm
	var reference map[string][]byte
	for _, mode := range [][]string{nil, {"-pdu", "4096"}, {"--max-send-pdu", "4096"}} {
		t.Run(strings.Join(append([]string{"default"}, mode...), " "), func(t *testing.T) {
			ts := startServer(t, nil)
			h, p := hostPort(t, ts.addr)
			args := append([]string{"-aec", "DICOMGATE", "-xd"}, mode...)
			if out, err := dcmtk(t, "storescu", append(append(args, h, p), files...)...); err != nil {
				t.Fatalf("storescu: %v\n%s", err, out)
			}
			got := map[string][]byte{}
			paths, _ := filepath.Glob(filepath.Join(ts.spool.Dir(), "*.dcm"))
			for _, f := range paths {
				got[filepath.Base(f)] = part10DataSet(t, f)
			}
			if len(got) != len(files) {
				t.Fatalf("stored %d of %d", len(got), len(files))
			}
			if reference == nil {
				reference = got
				return
			}
			for k, v := range reference {
				if !bytes.Equal(got[k], v) {
					t.Errorf("%s differs from the default-PDU run", k)
				}
			}
		})
	}
}

// TestDCMTKStorescuAbort: storescu --abort ends with A-ABORT instead of a
// release; what was acknowledged stays, nothing partial is left, and the
// server keeps serving.
func TestDCMTKStorescuAbort(t *testing.T) {
	files := dicomtest.CorpusFiles(t)[:3]
	ts := startServer(t, nil)
	h, p := hostPort(t, ts.addr)
	if out, err := dcmtk(t, "storescu", append([]string{"--abort", "-aec", "DICOMGATE", h, p}, files...)...); err != nil {
		t.Fatalf("storescu --abort: %v\n%s", err, out)
	}
	inst, tmp := spoolFiles(t, ts)
	if len(inst) != 3 || len(tmp) != 0 {
		t.Fatalf("spool holds %v %v", inst, tmp)
	}
	echoOK(t, ts)
}

// TestClientToStorescp sends the corpus with dimse.Client to a
// bit-preserving storescp: what storescp received must be the original data
// set, byte for byte.
func TestClientToStorescp(t *testing.T) {
	files := dicomtest.CorpusFiles(t)
	scpAddr, scpDir := startStorescp(t)
	sent := 0
	for _, f := range files {
		name := filepath.Base(f)
		m, err := dataset.ReadFileMetaFile(f)
		if err != nil || storescuRefuses[name] != "" {
			continue // no meta header or no SOP UIDs: nothing to send
		}
		ts, _ := dataset.LookupTransferSyntax(m.TransferSyntaxUID)
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(fh)
		_, off, _ := dataset.ReadFileMeta(br)
		id, err := dataset.Identify(br, ts.Encoding)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fi, _ := fh.Stat()
		c, err := Dial(context.Background(), scpAddr, ClientConfig{CalledAETitle: "STORESCP"},
			[]ContextProposal{{AbstractSyntax: id.SOPClassUID, TransferSyntaxes: []string{m.TransferSyntaxUID}}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !c.Accepted(id.SOPClassUID, m.TransferSyntaxUID) {
			t.Logf("%s: storescp does not accept %s in %s", name, id.SOPClassUID, m.TransferSyntaxUID)
			_ = c.Release()
			fh.Close()
			continue
		}
		err = c.Store(context.Background(), id.SOPClassUID, id.SOPInstanceUID, m.TransferSyntaxUID, io.NewSectionReader(fh, off, fi.Size()-off), fi.Size()-off)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Release(); err != nil {
			t.Fatal(err)
		}
		ref := onlyFile(t, scpDir)
		want := part10DataSet(t, f)
		if len(want)%2 == 1 && m.TransferSyntaxUID == dataset.DeflatedExplicitVRLittleEndian {
			want = append(want, 0) // the PS3.5 A.5 pad Client.Store adds
		}
		if !bytes.Equal(part10DataSet(t, ref), want) {
			t.Errorf("%s: storescp received another data set than the original", name)
		}
		_ = os.Remove(ref)
		sent++
	}
	if sent < 40 {
		t.Fatalf("only %d files sent", sent)
	}
}

// TestDCMTKTLS runs DCMTK's echoscu and storescu against the server behind
// DICOM TLS (PS3.15 B.1, DCMTK's default BCP 195 profile) that requires and
// verifies client certificates: a client with a certificate from the
// trusted CA gets through and its instance is stored as sent;
// one with a certificate from another CA, or with none, is refused during
// the handshake and the listener keeps serving.
func TestDCMTKTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, "test CA", nil, nil)
	clientCert, clientKey := newCert(t, "MODALITY", ca, caKey)
	otherCA, otherCAKey := newCert(t, "other CA", nil, nil)
	strangerCert, strangerKey := newCert(t, "STRANGER", otherCA, otherCAKey)
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPEM := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(name, "PRIVATE KEY", der)
	}
	caFile := writePEM("ca.pem", "CERTIFICATE", ca.Raw)
	clientFile, clientKeyFile := writePEM("client.pem", "CERTIFICATE", clientCert.Raw), keyPEM("client.key", clientKey)
	strangerFile, strangerKeyFile := writePEM("stranger.pem", "CERTIFICATE", strangerCert.Raw), keyPEM("stranger.key", strangerKey)

	ts := startTLSServer(t, ca, caKey)
	h, p := hostPort(t, ts.addr)

	trusted := []string{"+tls", clientKeyFile, clientFile, "+cf", caFile}
	if out, err := dcmtk(t, "echoscu", append(append([]string{"-aec", "DICOMGATE"}, trusted...), h, p)...); err != nil {
		t.Fatalf("echoscu over TLS: %v\n%s", err, out)
	}
	file := dicomtest.SuyashFile(t, "1.dcm")
	if out, err := dcmtk(t, "storescu", append(append([]string{"-aec", "DICOMGATE"}, trusted...), h, p, file)...); err != nil {
		t.Fatalf("storescu over TLS: %v\n%s", err, out)
	}
	if !ts.sawTLS.Load() {
		t.Error("handler not told the association runs over TLS")
	}
	stored, err := filepath.Glob(filepath.Join(ts.spool.Dir(), "*"))
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored %v, %v; want one file", stored, err)
	}
	// storescu re-encodes some files on the way (see
	// TestDCMTKStorescuCorpus): a bit-preserving storescp's copy of the same
	// sending is the reference.
	scpAddr, scpDir := startStorescp(t)
	sh, sp2 := hostPort(t, scpAddr)
	if out, err := dcmtk(t, "storescu", "-aec", "STORESCP", sh, sp2, file); err != nil {
		t.Fatalf("storescu -> storescp: %v\n%s", err, out)
	}
	if !bytes.Equal(part10DataSet(t, stored[0]), part10DataSet(t, onlyFile(t, scpDir))) {
		t.Fatal("data set stored over TLS differs from storescp's bit-preserved copy of the same sending")
	}

	if n := ts.log.count(handshakeFailed); n != 0 {
		t.Fatalf("%d handshakes of the trusted client failed", n)
	}
	for i, tc := range []struct {
		name string
		args []string
	}{
		{"certificate from another CA", []string{"+tls", strangerKeyFile, strangerFile, "+cf", caFile}},
		{"no client certificate", []string{"+tla", "+cf", caFile}},
	} {
		out, err := dcmtk(t, "echoscu", append(append([]string{"-aec", "DICOMGATE"}, tc.args...), h, p)...)
		if err == nil {
			t.Errorf("echoscu with %s got through:\n%s", tc.name, out)
		}
		t.Logf("%s: %s", tc.name, strings.TrimSpace(out))
		// Refused by the server's handshake, not failing on its own.
		ts.log.waitLogged(t, handshakeFailed, i+1)
	}
	if out, err := dcmtk(t, "echoscu", append(append([]string{"-aec", "DICOMGATE"}, trusted...), h, p)...); err != nil {
		t.Fatalf("listener stopped serving after refused handshakes: %v\n%s", err, out)
	}
}
