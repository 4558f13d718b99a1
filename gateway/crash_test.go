package gateway

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"dicomgate/bench/ctstudy"
	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
	"dicomgate/dimse/spool"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/appcert"
	"dicomgate/platform/client"
)

// The crash test runs the gateway in a child process (this test binary,
// re-executed) so that it can be killed with SIGKILL, as a power cut or
// the OOM killer would.
const childEnv = "DICOMGATE_TEST_GATEWAY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild is the gateway process of the crash test: DICOM listener and
// gateway over the data directory, delivering to the platform.
func runChild() int {
	dir, addr, url := os.Getenv("GW_DIR"), os.Getenv("GW_ADDR"), os.Getenv("GW_PLATFORM")
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 2 }
	creds, err := appcert.Load(filepath.Join(dir, "app"))
	if err != nil {
		return fail(err)
	}
	pc, err := client.New(client.Config{URL: url, Credentials: creds, Backoff: 20 * time.Millisecond, MaxAttempts: 2})
	if err != nil {
		return fail(err)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		return fail(err)
	}
	sp, err := spool.Open(filepath.Join(dir, "spool"), "1.2.826.0.1.3680043.9.7433.1", "DICOMGATE_TEST")
	if err != nil {
		return fail(err)
	}
	gw, err := New(Config{QuietPeriod: 150 * time.Millisecond, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		MaxAttempts: 1000, Parallel: 3, Log: slog.New(slog.DiscardHandler),
		Rules: []route.Rule{{Action: route.ActionRecord}}}, st, sp, pc)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(err)
	}
	go (&dimse.Server{AETitle: "DICOMGATE", Handler: gw}).Serve(ctx, ln)
	if err := gw.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

type child struct {
	cmd *exec.Cmd
}

func startChild(t *testing.T, dir, addr, url string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "GW_DIR="+dir, "GW_ADDR="+addr, "GW_PLATFORM="+url)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &child{cmd: cmd}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("gateway child did not start listening")
	return nil
}

func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// sendOne stores one file over an association, reporting whether the
// gateway acknowledged it.
func sendOne(ctx context.Context, cl *dimse.Client, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	meta, off, err := dataset.ReadFileMeta(br)
	if err != nil {
		return err
	}
	fi, _ := f.Stat()
	return cl.Store(ctx, meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID, br, fi.Size()-off)
}

// TestCrashes kills the gateway with SIGKILL at random moments while
// instances arrive and while studies are delivered, 12 times, restarting
// it each time. Afterwards every acknowledged instance is in its study's
// one thing exactly once, with complete blobs.
func TestCrashes(t *testing.T) {
	if testing.Short() {
		if os.Getenv("DICOMGATE_REQUIRE_PEERS") == "1" {
			t.Fatal("the crash test must run when DICOMGATE_REQUIRE_PEERS=1 (drop -short)")
		}
		t.Skip("crash test in -short mode")
	}
	root := t.TempDir()
	ctx := context.Background()
	pf := startPlatform(t, root)
	gwDir := filepath.Join(root, "gw")
	// The child uses the application the platform registered.
	if err := os.CopyFS(filepath.Join(gwDir, "app"), os.DirFS(filepath.Join(root, "app"))); err != nil {
		t.Fatal(err)
	}
	pre, err := store.OpenSQLite(ctx, filepath.Join(gwDir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	const studies = 4
	var (
		files     []string
		studyUIDs []string
	)
	for i := range studies {
		pid := fmt.Sprintf("CRASH-%d", i)
		pre.PutLink(ctx, store.PatientLink{ExternalID: pid, PersonID: pf.personID, RecordID: pf.recordID, AuthorizedAt: time.Now()})
		uid := ctstudy.NewUID()
		studyUIDs = append(studyUIDs, uid)
		for se := range 2 {
			s, err := ctstudy.WriteSeries(filepath.Join(root, "in", fmt.Sprint(i), fmt.Sprint(se)), ctstudy.Options{
				Instances: 5, Rows: 48, Columns: 48, PatientID: pid, StudyInstanceUID: uid, Seed: uint64(10*i + se)})
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, s.Files...)
		}
	}
	pre.Close()
	rand.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()

	var (
		mu    sync.Mutex
		cur   = startChild(t, gwDir, addr, pf.url)
		acked = map[string]bool{}
		kills int
	)
	// The sender behaves like a modality: on a failure it reconnects and
	// sends the same instance again.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		var cl *dimse.Client
		for i := 0; i < len(files); {
			if cl == nil {
				c, err := dimse.Dial(ctx, addr, dimse.ClientConfig{CallingAETitle: "CRASHTEST", CalledAETitle: "DICOMGATE"},
					dimse.ProposalsFor([][2]string{{ctstudy.CTImageStorage, "1.2.840.10008.1.2.1"}}))
				if err != nil {
					time.Sleep(30 * time.Millisecond)
					continue
				}
				cl = c
			}
			if err := sendOne(ctx, cl, files[i]); err != nil {
				cl.Abort()
				cl = nil
				continue
			}
			mu.Lock()
			acked[sopOf(t, files[i])] = true
			mu.Unlock()
			i++
			time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
		}
		if cl != nil {
			cl.Release()
		}
	}()
	// Kill during ingest, then during delivery.
	for kills < 12 {
		time.Sleep(time.Duration(80+rand.IntN(400)) * time.Millisecond)
		mu.Lock()
		cur.kill()
		kills++
		cur = startChild(t, gwDir, addr, pf.url)
		mu.Unlock()
	}
	<-sent
	for range 3 {
		time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		cur.kill()
		kills++
		cur = startChild(t, gwDir, addr, pf.url)
	}
	defer cur.kill()
	if len(acked) != len(files) {
		t.Fatalf("%d of %d instances acknowledged", len(acked), len(files))
	}

	// Let the last gateway finish every delivery.
	view, err := store.OpenSQLite(ctx, filepath.Join(gwDir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	deadline := time.Now().Add(120 * time.Second)
	for _, uid := range studyUIDs {
		for {
			st, err := view.Study(ctx, uid)
			if err == nil && st.State == store.StateDelivered && st.Delivered == st.Instances && st.Instances == 10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("study %s not delivered: %+v (%v)", uid, st, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	originals := originalsOf(t, files)
	for _, uid := range studyUIDs {
		things := studyThings(t, pf.client, pf.recordID, uid)
		if len(things) != 1 {
			t.Fatalf("study %s: %d things, want exactly 1", uid, len(things))
		}
		m, err := mis.ParseMIS(things[0].Data[0].Inner, mis.V2)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, se := range m.Series {
			for _, img := range se.Images {
				seen[img.BlobName]++
			}
		}
		for sop, n := range seen {
			if n != 1 {
				t.Errorf("study %s: image %s listed %d times", uid, sop, n)
			}
			if !acked[sop] {
				t.Errorf("study %s: image %s was never acknowledged", uid, sop)
			}
		}
		if len(seen) != 10 {
			t.Errorf("study %s: %d images, want 10", uid, len(seen))
		}
		for _, b := range things[0].BlobPayload.Blobs {
			fetchBlob(t, pf.client, b, originals)
		}
	}
	t.Logf("%d instances in %d studies survived %d SIGKILLs", len(files), studies, kills)
}
