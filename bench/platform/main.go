// Command platform benchmarks dicomgate's bundled platform (SPEC §4):
//
//   - a blob of -size bytes uploaded by platform/client into a platform
//     server running in a separate process over loopback, then downloaded:
//     MB/s each way and the peak RSS (VmHWM) of both processes, beside the
//     single-core SHA-256 speed of this machine measured in the same run;
//   - the same upload by the reference uploader (reference.go): the least
//     that meets the rules, without the platform; the platform's
//     upload is reported as a share of it too;
//   - GetThings latency for one study (the seed's study-instance-uid XPath)
//     among -things things in a record, on SQLite and on PostgreSQL (a
//     throwaway cluster from the installed binaries).
//
// Run: go run ./bench/platform [-size 1073741824] [-rounds 3] [-things 10000] [-pg=true]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"dicomgate/platform/appcert"
	"dicomgate/platform/blob"
	"dicomgate/platform/client"
	"dicomgate/platform/provision"
	"dicomgate/platform/server"
	"dicomgate/platform/store"
	"dicomgate/platform/store/postgres"
	"dicomgate/platform/store/postgres/pgcluster"
	"dicomgate/platform/store/sqlite"
	"dicomgate/platform/store/sqlstore"
	"dicomgate/platform/thing"
)

const misType = "c75651c8-548e-449f-8942-9e6379b0b88a"

var (
	serverDir   string
	concurrency int
)

func main() {
	role := flag.String("role", "bench", "bench, or server (internal: the server process)")
	size := flag.Int64("size", 1<<30, "blob size in bytes")
	things := flag.Int("things", 10000, "things in the record for the GetThings latency")
	queries := flag.Int("queries", 200, "GetThings queries per backend")
	pg := flag.Bool("pg", true, "also measure GetThings on PostgreSQL")
	dataDir := flag.String("dir", "", "parent of the server's data directory (default: the system temp dir); put it on tmpfs to take the disk out")
	conc := flag.Int("concurrency", 0, "chunks in flight (client default when 0)")
	rounds := flag.Int("rounds", 3, "blob transfer rounds (each also runs the reference uploader)")
	flag.Parse()
	serverDir, concurrency = *dataDir, *conc
	if *role == "refserver" {
		if err := refServe(); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *role == "server" {
		defer profileInto(os.Getenv("BENCH_CPUPROFILE"))()
		if err := serve(); err != nil {
			log.Fatal(err)
		}
		return
	}
	defer profileInto(os.Getenv("BENCH_CLIENT_CPUPROFILE"))()
	if *size > 0 {
		if err := transfers(*size, *rounds); err != nil {
			log.Fatal(err)
		}
	}
	if *things > 0 {
		if err := latency("sqlite", *things, *queries, nil); err != nil {
			log.Fatal(err)
		}
		if *pg {
			c, err := pgcluster.Start()
			if err != nil {
				log.Fatal(err)
			}
			defer c.Stop()
			if err := latency("postgres", *things, *queries, c); err != nil {
				log.Fatal(err)
			}
		}
	}
}

// profileInto writes a CPU profile of this process into path, when set,
// until the returned function is called.
func profileInto(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// startChild runs this program again with -role role (a server process)
// and returns the fields of the line it prints once it serves, after
// "READY". stop ends it (it serves until its stdin closes).
func startChild(role string) (fields []string, pid int, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, nil, err
	}
	cmd := exec.Command(self, "-role", role, "-dir", serverDir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, 0, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, nil, err
	}
	stop = func() { stdin.Close(); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) == 0 || f[0] != "READY" {
		stop()
		return nil, 0, nil, fmt.Errorf("%s process said %q: %v", role, line, err)
	}
	return f[1:], cmd.Process.Pid, stop, nil
}

// startServer serves a platform over st, with its blobs under dir, on a
// loopback port; stop closes it.
func startServer(st store.Store, dir string, maxBlob int64) (hs *httptest.Server, stop func(), err error) {
	hs = httptest.NewUnstartedServer(nil)
	srv, err := server.New(server.Config{Store: st, DataDir: dir, PublicURL: "http://" + hs.Listener.Addr().String(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBlobSize: maxBlob})
	if err != nil {
		hs.Close()
		return nil, nil, err
	}
	hs.Config.Handler = srv
	hs.Start()
	return hs, func() { hs.Close(); srv.Close() }, nil
}

func sha256Speed() float64 {
	buf := make([]byte, 1<<20)
	h := sha256.New()
	start := time.Now()
	for range 1024 {
		h.Write(buf)
	}
	h.Sum(nil)
	return float64(1<<30) / time.Since(start).Seconds() / 1e6
}

// serve is the server process: it starts a platform on loopback with a
// SQLite store, provisions an app and a record, prints
// "READY url creds-dir record-id" and serves until stdin closes.
func serve() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp(serverDir, "platform-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "platform.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	hs, stop, err := startServer(st, dir, 16<<30)
	if err != nil {
		return err
	}
	defer stop()
	_, rec, err := provisionApp(ctx, st, filepath.Join(dir, "app"))
	if err != nil {
		return err
	}
	fmt.Printf("READY %s %s %s\n", hs.URL, filepath.Join(dir, "app"), rec)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

func provisionApp(ctx context.Context, st store.Store, dir string) (*appcert.Credentials, string, error) {
	creds, err := provision.BootstrapApp(ctx, st, dir, "bench")
	if err != nil {
		return nil, "", err
	}
	p, err := provision.CreatePerson(ctx, st, "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36), "Bench", "bench password")
	if err != nil {
		return nil, "", err
	}
	r, err := provision.CreateRecord(ctx, st, p.ID, "Bench", provision.RelationshipSelf)
	if err != nil {
		return nil, "", err
	}
	return creds, r.ID, provision.Authorize(ctx, st, creds.AppID, r.ID)
}

// source yields n pseudo-random bytes without holding them: a 1 MiB random
// block, its first 8 bytes rewritten per block so no two blocks are equal.
type source struct {
	block []byte
	n     int64
	off   int64
}

func (s *source) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	bo := s.off % int64(len(s.block))
	if bo == 0 {
		copy(s.block, strconv.FormatInt(s.off, 16)+"........")
	}
	k := copy(p, s.block[bo:])
	if rem := s.n - s.off; int64(k) > rem {
		k = int(rem)
	}
	s.off += int64(k)
	return k, nil
}

func newSource(n int64) *source {
	b := make([]byte, 1<<20)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return &source{block: b, n: n}
}

// figures are one round's measurements.
type figures struct {
	sha                  float64 // single-core SHA-256, MB/s
	up, down, ref        float64 // MB/s
	upCPU, upSCPU        float64 // CPU s/GB, client and server
	downCPU, downSCPU    float64
	refCPU, refSCPU      float64
	rssClient, rssServer string
	chunk                int64
}

// transfers runs the blob rounds, each measuring the SHA-256 speed, the
// platform's upload and download, and the reference uploader, and prints
// each round and the medians.
func transfers(size int64, rounds int) error {
	var all []figures
	for r := 1; r <= rounds; r++ {
		fg := figures{sha: sha256Speed()}
		if err := transfer(size, &fg); err != nil {
			return err
		}
		var err error
		if fg.ref, fg.refCPU, fg.refSCPU, err = refUpload(size); err != nil {
			return err
		}
		all = append(all, fg)
		fmt.Printf("round %d: SHA-256 %.0f MB/s | upload %.0f MB/s (%.0f%% of SHA-256; CPU/GB client %.2f s, server %.2f s) | reference upload %.0f MB/s (%.0f%%; CPU/GB %.2f s, %.2f s) | platform/reference %.2f | download %.0f MB/s (CPU/GB %.2f s, %.2f s) | RSS client %s, server %s | load %s\n",
			r, fg.sha, fg.up, 100*fg.up/fg.sha, fg.upCPU, fg.upSCPU, fg.ref, 100*fg.ref/fg.sha, fg.refCPU, fg.refSCPU, fg.up/fg.ref,
			fg.down, fg.downCPU, fg.downSCPU, fg.rssClient, fg.rssServer, loadavg())
	}
	med := func(f func(figures) float64) float64 {
		v := make([]float64, len(all))
		for i, fg := range all {
			v[i] = f(fg)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	where := serverDir
	if where == "" {
		where = os.TempDir()
	}
	fmt.Printf("blob %d bytes over loopback (chunk %d, server data under %s, %d chunks in flight), median of %d rounds:\n",
		size, all[0].chunk, where, max(concurrency, 3), len(all))
	fmt.Printf("  single-core SHA-256 (crypto/sha256)  %.0f MB/s\n", med(func(f figures) float64 { return f.sha }))
	fmt.Printf("  upload                               %.0f MB/s = %.0f%% of SHA-256 (target >= 50%%)\n",
		med(func(f figures) float64 { return f.up }), med(func(f figures) float64 { return 100 * f.up / f.sha }))
	fmt.Printf("  reference upload (hash both ends, O_DIRECT + fdatasync, nothing else) %.0f MB/s = %.0f%% of SHA-256\n",
		med(func(f figures) float64 { return f.ref }), med(func(f figures) float64 { return 100 * f.ref / f.sha }))
	fmt.Printf("  upload / reference                   %.2f\n", med(func(f figures) float64 { return f.up / f.ref }))
	fmt.Printf("  download (hash verified)             %.0f MB/s\n", med(func(f figures) float64 { return f.down }))
	fmt.Printf("  peak RSS: client %s, server %s (last round; target <= 64 MiB each)\n", all[len(all)-1].rssClient, all[len(all)-1].rssServer)
	return nil
}

// loadavg is the 1-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// transfer uploads and downloads one blob through a platform server
// process, filling fg.
func transfer(size int64, fg *figures) error {
	ctx := context.Background()
	f, pid, stop, err := startChild("server")
	if err != nil {
		return err
	}
	defer stop()
	if len(f) != 3 {
		return fmt.Errorf("server process said READY %q", f)
	}
	url, credDir, record := f[0], f[1], f[2]
	creds, err := appcert.Load(credDir)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{URL: url, Credentials: creds, UploadConcurrency: concurrency})
	if err != nil {
		return err
	}

	// The peak RSS is this upload's and download's alone, not an earlier
	// round's or the reference uploader's (Linux: 5 resets VmHWM).
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	cpu0, scpu0 := cpuTime("self"), cpuTime(strconv.Itoa(pid))
	start := time.Now()
	b, err := c.UploadBlob(ctx, record, "bench", "application/octet-stream", newSource(size))
	if err != nil {
		return err
	}
	up := time.Since(start)
	cpu1, scpu1 := cpuTime("self"), cpuTime(strconv.Itoa(pid))
	st := &thing.Thing{Type: &thing.TypeID{ID: misType}}
	st.SetData([]byte(`<medical-image-study><study-instance-uid>bench</study-instance-uid></medical-image-study>`))
	st.SetBlob(b)
	if _, err := c.PutThings(ctx, record, st); err != nil {
		return fmt.Errorf("PutThings (server checks the hash): %w", err)
	}
	groups, err := c.GetThings(ctx, record, client.StudyQuery(misType, "bench"))
	if err != nil {
		return err
	}
	ref := groups[0].Things[0].Blob("bench")
	h := blob.NewHasher(ref.Info.HashInfo.BlockSize())
	start = time.Now()
	n, err := c.DownloadBlob(ctx, ref.RefURL, h)
	if err != nil {
		return err
	}
	down := time.Since(start)
	cpu2, scpu2 := cpuTime("self"), cpuTime(strconv.Itoa(pid))
	root, _ := h.RootBase64()
	if n != size || root != b.Info.HashInfo.Hash {
		return fmt.Errorf("downloaded %d bytes with hash %s, want %d with %s", n, root, size, b.Info.HashInfo.Hash)
	}
	gb := float64(size) / 1e9
	*fg = figures{sha: fg.sha, up: float64(size) / up.Seconds() / 1e6, down: float64(size) / down.Seconds() / 1e6,
		upCPU: (cpu1 - cpu0) / gb, upSCPU: (scpu1 - scpu0) / gb, downCPU: (cpu2 - cpu1) / gb, downSCPU: (scpu2 - scpu1) / gb,
		rssClient: hwm("self"), rssServer: hwm(strconv.Itoa(pid)), chunk: b.Info.HashInfo.BlockSize()}
	return nil
}

// cpuTime returns the user+system CPU seconds a process has used so far
// (/proc/PID/stat fields 14 and 15, in clock ticks of 1/100 s).
func cpuTime(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

// hwm returns VmHWM (peak resident set) of a process.
func hwm(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

func latency(backend string, things, queries int, pg *pgcluster.Cluster) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "platform-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var st *sqlstore.Store
	if pg != nil {
		dsn, err := pg.NewDatabase(ctx)
		if err != nil {
			return err
		}
		st, err = postgres.Open(ctx, dsn)
		if err != nil {
			return err
		}
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(dir, "platform.db"))
		if err != nil {
			return err
		}
	}
	defer st.Close()
	hs, stop, err := startServer(st, dir, 0)
	if err != nil {
		return err
	}
	defer stop()
	creds, record, err := provisionApp(ctx, st, filepath.Join(dir, "app"))
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{URL: hs.URL, Credentials: creds, HTTPClient: &http.Client{}})
	if err != nil {
		return err
	}
	start := time.Now()
	const batch = 500
	for i := 0; i < things; i += batch {
		var ts []*thing.Thing
		for j := i; j < min(i+batch, things); j++ {
			t := &thing.Thing{Type: &thing.TypeID{ID: misType}}
			t.SetData(studyXML(j))
			ts = append(ts, t)
		}
		if _, err := c.PutThings(ctx, record, ts...); err != nil {
			return err
		}
	}
	load := time.Since(start)
	var lat []time.Duration
	for q := range queries {
		uid := fmt.Sprintf("1.2.826.0.1.%d", (q*7919)%things)
		t0 := time.Now()
		groups, err := c.GetThings(ctx, record, client.StudyQuery(misType, uid))
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		if len(groups[0].Things) != 1 || !bytes.Contains(groups[0].Things[0].TypeSpecific(), []byte(uid+"<")) {
			return fmt.Errorf("query %s found %d things", uid, len(groups[0].Things))
		}
	}
	slices.Sort(lat)
	// One database round trip, for scale: GetThings makes five (session,
	// authorization, things, their blobs, their keys).
	var rtt []time.Duration
	for range queries {
		t0 := time.Now()
		var one int
		if err := st.DB().QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return err
		}
		rtt = append(rtt, time.Since(t0))
	}
	slices.Sort(rtt)
	fmt.Printf("GetThings one study among %d things, %s: median %s, p95 %s (%d queries; loading took %.1f s; SELECT 1 median %s)\n",
		things, backend, lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*95/100].Round(10*time.Microsecond), queries, load.Seconds(),
		rtt[len(rtt)/2].Round(time.Microsecond))
	return nil
}

func studyXML(i int) []byte {
	return []byte(fmt.Sprintf(`<medical-image-study><when><date><y>2026</y><m>1</m><d>%d</d></date></when>`+
		`<description>Study %d</description><series><acquisition-datetime><date><y>2026</y><m>1</m><d>1</d></date></acquisition-datetime>`+
		`<images><image-blob-name>1.2.826.0.1.%d.1.1</image-blob-name></images><modality><text>CT</text></modality></series>`+
		`<study-instance-uid>1.2.826.0.1.%d</study-instance-uid></medical-image-study>`, i%28+1, i, i, i))
}
