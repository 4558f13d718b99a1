// Command ctgen writes a synthetic CT series, or one large multi-frame
// instance, with package dicomgate/bench/ctstudy.
//
//	ctgen -out DIR -n 500            # 500 CT slices in DIR
//	ctgen -multiframe FILE -size 1G  # one multi-frame instance of about 1 GiB
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"dicomgate/bench/ctstudy"
)

func main() {
	out := flag.String("out", "", "directory for the series")
	n := flag.Int("n", 3, "number of instances")
	mf := flag.String("multiframe", "", "write one multi-frame instance to this file instead")
	size := flag.String("size", "1G", "approximate size of the multi-frame instance (K, M, G suffixes)")
	flag.Parse()
	if err := run(*out, *n, *mf, *size); err != nil {
		fmt.Fprintln(os.Stderr, "ctgen:", err)
		os.Exit(1)
	}
}

func run(out string, n int, mf, size string) error {
	if mf != "" {
		bytes, err := parseSize(size)
		if err != nil {
			return err
		}
		f, err := os.Create(mf)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		uid, err := ctstudy.WriteMultiFrame(bw, ctstudy.Options{}, ctstudy.FramesFor(bytes))
		if err == nil {
			err = bw.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			fmt.Println(mf, uid)
		}
		return err
	}
	if out == "" {
		return fmt.Errorf("-out or -multiframe is required")
	}
	s, err := ctstudy.WriteSeries(out, ctstudy.Options{Instances: n})
	if err != nil {
		return err
	}
	fmt.Printf("%d instances, %d bytes, study %s\n", len(s.Files), s.Bytes, s.StudyInstanceUID)
	return nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v * mult, err
}
