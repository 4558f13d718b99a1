// Command gateway is the helper of bench/gateway/run.sh, the benchmark of a
// whole delivery (DICOM C-STORE in, previews rendered, blobs streamed into
// a record, medical image study thing committed) through `dicomgate serve`.
//
//	gateway link -data DIR -login LOGIN -record ID -patient-id PID
//	gateway wait -data DIR -study UID [-timeout 10m]
//
// link maps a DICOM Patient ID to a record of the bundled platform in the
// gateway's store, as an authorized Patient Connect request would (SPEC
// Patient Connect); run it before serve starts, so that no two processes
// write the gateway's SQLite database at once.
//
// wait polls the gateway's and the platform's SQLite databases, read-only,
// until the study is delivered (gw_studies.state = 'delivered', set after
// PutThings succeeded), then prints the study's timeline as key=value lines
// (Unix seconds): when instances arrived, the quiet period's end, the
// delivery events, the platform's blob and thing timestamps.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"dicomgate/gateway"
	gwstore "dicomgate/gateway/store"
	"dicomgate/platform/store/sqlite"

	_ "modernc.org/sqlite" // database/sql driver "sqlite" for the read-only queries
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gateway link|wait [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "link":
		err = link(os.Args[2:])
	case "wait":
		err = wait(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// link stores the Patient Connect mapping of -patient-id to -record, whose
// person is the one holding -login on the bundled platform.
func link(args []string) error {
	fs := flag.NewFlagSet("link", flag.ExitOnError)
	data := fs.String("data", "", "serve's --data directory")
	login := fs.String("login", "", "login of the person holding the record")
	record := fs.String("record", "", "record id (from `dicomgate platform record create`)")
	patientID := fs.String("patient-id", "CTSTUDY-0001", "DICOM Patient ID of the study")
	issuer := fs.String("issuer", "", "Issuer of Patient ID")
	fs.Parse(args)
	if *data == "" || *login == "" || *record == "" {
		return errors.New("link needs -data, -login and -record")
	}
	ctx := context.Background()
	ps, err := sqlite.Open(ctx, filepath.Join(*data, "platform", "platform.db"))
	if err != nil {
		return err
	}
	defer ps.Close()
	p, err := ps.PersonByLogin(ctx, *login)
	if err != nil {
		return fmt.Errorf("person %s: %w", *login, err)
	}
	gs, err := gwstore.OpenSQLite(ctx, filepath.Join(*data, "gateway.db"))
	if err != nil {
		return err
	}
	defer gs.Close()
	return gs.PutLink(ctx, gwstore.PatientLink{
		ExternalID: gateway.ExternalID(*patientID, *issuer), PersonID: p.ID, RecordID: *record,
		AuthorizedAt: time.Now(),
	})
}

// openRO opens a SQLite database read-only; the writer (serve) keeps it in
// WAL mode, so reading never blocks it.
func openRO(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
}

// wait polls until the study is delivered and prints its timeline.
func wait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	data := fs.String("data", "", "serve's --data directory")
	study := fs.String("study", "", "Study Instance UID")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	every := fs.Duration("every", 20*time.Millisecond, "polling interval")
	fs.Parse(args)
	if *data == "" || *study == "" {
		return errors.New("wait needs -data and -study")
	}
	gw, err := openRO(filepath.Join(*data, "gateway.db"))
	if err != nil {
		return err
	}
	defer gw.Close()
	deadline := time.Now().Add(*timeout)
	var state, why string
	for {
		err := gw.QueryRow(`SELECT state, error FROM gw_studies WHERE study_uid = ?`, *study).Scan(&state, &why)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case state == string(gwstore.StateDelivered):
			return timeline(gw, *data, *study)
		case state == string(gwstore.StateFailed), state == string(gwstore.StateHeld),
			state == string(gwstore.StateWaitingPatient), state == string(gwstore.StateWaitingPickup):
			return fmt.Errorf("study %s is %s %s", *study, state, why)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("study %s still %q after %v (%s)", *study, state, *timeout, why)
		}
		time.Sleep(*every)
	}
}

func secs(nanos int64) string { return fmt.Sprintf("%.3f", float64(nanos)/1e9) }

// timeline prints the delivered study's timestamps and its blobs' upload
// statistics.
func timeline(gw *sql.DB, data, study string) error {
	var (
		instances                                    int
		first, last, ready, delivered, blobs, blobsT int64
		recordID, thingID                            string
	)
	err := gw.QueryRow(`SELECT instances, first_received, last_received, ready_at, delivered_at, blobs_done, blobs_total,
		record_id, thing_id FROM gw_studies WHERE study_uid = ?`, study).
		Scan(&instances, &first, &last, &ready, &delivered, &blobs, &blobsT, &recordID, &thingID)
	if err != nil {
		return err
	}
	fmt.Printf("instances=%d\nblobs=%d\nfirst_received=%s\nlast_received=%s\nready_at=%s\ndelivered_at=%s\n",
		instances, blobsT, secs(first), secs(last), secs(ready), secs(delivered))
	rows, err := gw.Query(`SELECT kind, MIN(at) FROM gw_events WHERE study_uid = ? GROUP BY kind`, study)
	if err != nil {
		return err
	}
	for rows.Next() {
		var kind string
		var at int64
		if err := rows.Scan(&kind, &at); err != nil {
			rows.Close()
			return err
		}
		fmt.Printf("event_%s=%s\n", sanitize(kind), secs(at))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	pf, err := openRO(filepath.Join(data, "platform", "platform.db"))
	if err != nil {
		return err
	}
	defer pf.Close()
	var updated int64
	if err := pf.QueryRow(`SELECT updated FROM things WHERE record_id = ? AND id = ?`, recordID, thingID).
		Scan(&updated); err != nil {
		return fmt.Errorf("thing %s in record %s: %w", thingID, recordID, err)
	}
	fmt.Printf("thing_updated=%s\n", secs(updated))
	// Per content type: how many blobs, their bytes, the first start, the
	// last completion and the summed time each spent being uploaded.
	rows, err = pf.Query(`SELECT tb.content_type, COUNT(*), SUM(b.size), MIN(b.created), MAX(b.completed),
		SUM(b.completed - b.created) FROM thing_blobs tb JOIN blobs b ON b.id = tb.blob_id
		WHERE tb.record_id = ? AND tb.thing_id = ? GROUP BY tb.content_type`, recordID, thingID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ct string
		var n, size, start, end, busy int64
		if err := rows.Scan(&ct, &n, &size, &start, &end, &busy); err != nil {
			return err
		}
		k := map[string]string{"application/dicom": "dicom", "image/jpeg": "jpeg"}[ct]
		if k == "" {
			k = sanitize(ct)
		}
		fmt.Printf("blobs_%s=%d\nbytes_%s=%d\nfirst_blob_%s=%s\nlast_blob_%s=%s\nblob_busy_%s=%s\n",
			k, n, k, size, k, secs(start), k, secs(end), k, secs(busy))
	}
	return rows.Err()
}

// sanitize makes s usable as a shell variable name.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
