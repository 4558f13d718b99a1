// Command studybench measures dicomgate's preview renderer against Orthanc
// on the same generated CT study, in the same run: it writes an N-instance
// study, renders every instance's preview and thumbnail on all cores, then
// starts Orthanc on loopback ports with its storage in a temporary
// directory, uploads the study through its REST API and times fetching
// /instances/{id}/preview for every instance with a parallel client.
//
//	go run ./bench/previews/studybench -n 500
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"golang.org/x/sync/errgroup"

	"dicomgate/bench/ctstudy"
	"dicomgate/previews"
)

func main() {
	n := flag.Int("n", 500, "instances in the study")
	orthanc := flag.String("orthanc", "/usr/sbin/Orthanc", "Orthanc binary")
	workers := flag.Int("workers", runtime.NumCPU(), "parallel renderers / HTTP clients")
	rounds := flag.Int("rounds", 3, "alternating rounds of each contender")
	skipOrthanc := flag.Bool("skip-orthanc", false, "only measure dicomgate")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the dicomgate phases to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "studybench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *workers, *rounds, *orthanc, *skipOrthanc); err != nil {
		fmt.Fprintln(os.Stderr, "studybench:", err)
		os.Exit(1)
	}
}

func run(n, workers, rounds int, orthanc string, skipOrthanc bool) error {
	dir, err := os.MkdirTemp("", "studybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	files, err := writeStudy(filepath.Join(dir, "study"), n)
	if err != nil {
		return err
	}
	fmt.Printf("study: %d instances of 512x512 16-bit CT, %d workers, GOMAXPROCS %d\n", n, workers, runtime.GOMAXPROCS(0))

	var o *orthancProc
	var ids []string
	if !skipOrthanc {
		if o, err = startOrthanc(orthanc, filepath.Join(dir, "orthanc")); err != nil {
			return err
		}
		defer o.stop()
		if ids, err = o.upload(files, workers); err != nil {
			return err
		}
		if err := o.describePreview(ids[0]); err != nil {
			return err
		}
	}
	// The machine may be shared: alternate the contenders for several
	// rounds so both see the same conditions, and compare best rounds.
	var best struct{ study, every, orthanc float64 }
	for round := 1; round <= rounds; round++ {
		// What the gateway does for a study: every instance gets its
		// image-preview thumbnail, the series' representative (middle)
		// instance also gets the 1024 px preview.
		d, err := renderAll(files, workers, func(i int) bool { return i == n/2 })
		if err != nil {
			return err
		}
		study := float64(n) / d.Seconds()
		// The heavier case of a full-size preview for every instance too.
		d2, err := renderAll(files, workers, func(int) bool { return true })
		if err != nil {
			return err
		}
		every := float64(n) / d2.Seconds()
		fmt.Printf("round %d: dicomgate thumbnails+1 preview %.1f/s (%v), preview+thumbnail each %.1f/s (%v)",
			round, study, d.Round(time.Millisecond), every, d2.Round(time.Millisecond))
		best.study, best.every = max(best.study, study), max(best.every, every)
		if o != nil {
			d3, err := o.fetchPreviews(ids, workers)
			if err != nil {
				return err
			}
			theirs := float64(n) / d3.Seconds()
			fmt.Printf(", orthanc /preview %.1f/s (%v)", theirs, d3.Round(time.Millisecond))
			best.orthanc = max(best.orthanc, theirs)
		}
		fmt.Println()
	}
	fmt.Printf("best: dicomgate study workload %.1f instances/s, preview+thumbnail each %.1f/s", best.study, best.every)
	if o != nil {
		fmt.Printf(", orthanc %.1f/s\nratio (study workload): %.1fx Orthanc's per-image rate\nratio (preview+thumbnail of every instance): %.1fx\n",
			best.orthanc, best.study/best.orthanc, best.every/best.orthanc)
	} else {
		fmt.Println()
	}
	return nil
}

func writeStudy(dir string, n int) ([]string, error) {
	s, err := ctstudy.WriteSeries(dir, ctstudy.Options{Instances: n, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		return nil, err
	}
	return s.Files, nil
}

// parallel runs fn for every index on workers goroutines and returns the
// first error; no index is started after it.
func parallel(n, workers int, fn func(i int) error) error {
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(workers)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}

func renderAll(files []string, workers int, withPreview func(i int) bool) (time.Duration, error) {
	opts := previews.DefaultOptions()
	start := time.Now()
	err := parallel(len(files), workers, func(i int) error {
		r, err := previews.RenderFile(files[i], opts)
		if err != nil {
			return err
		}
		if withPreview(i) {
			if err := r.WritePreview(io.Discard); err != nil {
				return err
			}
		}
		return r.WriteThumbnail(io.Discard)
	})
	return time.Since(start), err
}

type orthancProc struct {
	cmd  *exec.Cmd
	base string
	http *http.Client
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startOrthanc(bin, dir string) (*orthancProc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("orthanc not found (apt-get install -y orthanc): %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dicomPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"Name":                  "studybench",
		"StorageDirectory":      filepath.Join(dir, "db"),
		"IndexDirectory":        filepath.Join(dir, "db"),
		"HttpPort":              httpPort,
		"DicomPort":             dicomPort,
		"RemoteAccessAllowed":   false,
		"AuthenticationEnabled": false,
		"HttpServerEnabled":     true,
		"DicomServerEnabled":    false,
		"Plugins":               []string{},
		"HttpThreadsCount":      50,
		"StorageCompression":    false,
	}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, cfgPath)
	logf, err := os.Create(filepath.Join(dir, "orthanc.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	o := &orthancProc{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := o.http.Get(o.base + "/system")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	o.stop()
	return nil, errors.New("orthanc did not answer /system within 60s")
}

func (o *orthancProc) stop() {
	if o.cmd.Process != nil {
		_ = o.cmd.Process.Kill()
		_ = o.cmd.Wait()
	}
}

func (o *orthancProc) upload(files []string, workers int) ([]string, error) {
	ids := make([]string, len(files))
	err := parallel(len(files), workers, func(i int) error {
		b, err := os.ReadFile(files[i])
		if err != nil {
			return err
		}
		resp, err := o.http.Post(o.base+"/instances", "application/dicom", bytes.NewReader(b))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return fmt.Errorf("upload %s: %s: %s", files[i], resp.Status, msg)
		}
		var res struct{ ID string }
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return err
		}
		ids[i] = res.ID
		return nil
	})
	return ids, err
}

func (o *orthancProc) fetchPreviews(ids []string, workers int) (time.Duration, error) {
	start := time.Now()
	err := parallel(len(ids), workers, func(i int) error {
		resp, n, err := o.preview(ids[i])
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || n == 0 {
			return fmt.Errorf("preview %s: %s (%d bytes)", ids[i], resp.Status, n)
		}
		return nil
	})
	return time.Since(start), err
}

// preview fetches the JPEG preview of an instance, reads its body to the
// end and returns the response and the body's size.
func (o *orthancProc) preview(id string) (*http.Response, int64, error) {
	req, err := http.NewRequest(http.MethodGet, o.base+"/instances/"+id+"/preview", nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "image/jpeg")
	resp, err := o.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	return resp, n, nil
}

// describePreview fetches one preview and says what Orthanc returns.
func (o *orthancProc) describePreview(id string) error {
	resp, n, err := o.preview(id)
	if err != nil {
		return err
	}
	fmt.Printf("orthanc: %s, preview is %s, %d bytes\n", o.version(), resp.Header.Get("Content-Type"), n)
	return nil
}

func (o *orthancProc) version() string {
	resp, err := o.http.Get(o.base + "/system")
	if err != nil {
		return "version unknown"
	}
	defer resp.Body.Close()
	var sys struct{ Version string }
	_ = json.NewDecoder(resp.Body).Decode(&sys)
	return "Orthanc " + sys.Version
}
