package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"dicomgate/dimse"
	"dicomgate/dimse/dataset"
	"dicomgate/dimse/spool"
	"dicomgate/gateway/store"
	"dicomgate/mis"
)

var _ dimse.Handler = (*Gateway)(nil)

// Store implements dimse.Handler: it spools the instance (durably), reads
// its header facts and queues its index row, and only then lets the
// C-STORE be acknowledged; an instance whose header cannot join a study is
// refused. The index row is written in a batch right after (see indexer);
// the durable spool file is what the acknowledgement promises. A duplicate
// SOP Instance UID keeps the first copy (the spool's policy) and is indexed
// once.
func (g *Gateway) Store(ctx context.Context, req *dimse.StoreRequest, data io.Reader) error {
	in := dimse.SpoolInstance(req)
	// The header is read while the spool syncs the file: it is in the page
	// cache already, and the facts are used only once Put succeeded.
	var early chan header
	in.Published = func(st spool.Stored) {
		early = make(chan header, 1)
		go func() {
			f, err := readHeader(st)
			early <- header{f, err}
		}()
	}
	st, err := g.spool.Put(ctx, in, data)
	if err != nil {
		return err
	}
	peer := ""
	if req.Association.RemoteAddr != nil {
		peer = req.Association.RemoteAddr.String()
	}
	var h header
	if early != nil {
		h = <-early
	} else {
		h.f, h.err = readHeader(st)
	}
	if err := g.index(ctx, st, peer, h); err != nil {
		if !st.Duplicate && errors.Is(err, errUnindexable) {
			// Refused, so not kept: the sender keeps its copy.
			os.Remove(st.Path)
		}
		return err
	}
	return nil
}

// errUnindexable marks an instance whose header lacks what a study needs.
var errUnindexable = errors.New("gateway: instance cannot join a study")

// header is the outcome of reading a stored file's header facts.
type header struct {
	f   mis.Instance
	err error
}

// index records the instance, whose header facts h were read from the
// stored file, in its study; the study's quiet period restarts.
func (g *Gateway) index(ctx context.Context, st spool.Stored, peer string, h header) error {
	it, err := g.indexRow(st, peer, h)
	if err != nil {
		return err
	}
	return g.indexer.add(ctx, it)
}

// indexRow builds an instance's index row from its header facts h.
func (g *Gateway) indexRow(st spool.Stored, peer string, h header) (indexItem, error) {
	f, err := h.f, h.err
	if err != nil {
		return indexItem{}, &dimse.StatusError{Status: dimse.StatusCannotUnderstand,
			Comment: truncate(fmt.Sprintf("cannot index: %v", err), 64), Err: fmt.Errorf("%w: %w", errUnindexable, err)}
	}
	now := g.cfg.Now()
	if f.StudyDate == "" && f.SeriesDate == "" && f.AcquisitionDate == "" && f.ContentDate == "" && f.AcquisitionDT == "" {
		// The MIS needs a date; the day it reached the hospital's gateway
		// is the best one an undated instance has.
		f.StudyDate = now.Format("20060102")
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return indexItem{}, err
	}
	in := store.Instance{
		SOPInstanceUID: st.SOPInstanceUID, SOPClassUID: st.SOPClassUID, StudyUID: f.StudyInstanceUID,
		SeriesUID: f.SeriesInstanceUID, TransferSyntax: st.TransferSyntaxUID, Path: st.Path, Size: fileSize(st),
		CallingAE: st.CallingAETitle, PeerAddr: peer, ReceivedAt: now, Facts: raw,
	}
	return indexItem{n: store.NewInstance{Instance: in, Facts: studyFacts(f), ReadyAt: now.Add(g.cfg.QuietPeriod)}, facts: f}, nil
}

// readHeader reads the header facts of a stored instance. mis.ReadFile
// stops before the pixel data, most of an image's bytes; whether it is
// there the spool's walk already knows too.
func readHeader(st spool.Stored) (mis.Instance, error) {
	f, err := mis.ReadFile(st.Path)
	if err != nil {
		return mis.Instance{}, err
	}
	f.HasPixelData = f.HasPixelData || st.PixelData
	return f, nil
}

func fileSize(st spool.Stored) int64 {
	if st.Size > 0 {
		return st.Size
	}
	if fi, err := os.Stat(st.Path); err == nil {
		return fi.Size()
	}
	return 0
}

// studyFacts are the study-level facts of one instance.
func studyFacts(f mis.Instance) store.Study {
	st := store.Study{
		PatientID: f.PatientID, IssuerOfPatientID: f.IssuerOfPatientID, PatientName: f.PatientName,
		StudyDate: f.StudyDate, StudyDescription: f.StudyDescription, AccessionNumber: f.AccessionNumber,
		ReferringPhysician: f.ReferringPhysician,
	}
	if m := strings.TrimSpace(f.Modality); m != "" {
		st.Modalities = []string{m}
	}
	return st
}

// Recover indexes spooled files the store does not know: an instance
// whose file was published just before a crash, before its index row
// committed. (It was never acknowledged, but it is here, so it is
// delivered.) A file whose checksum mark shows that its data did not
// survive the crash (spool.ErrCorrupt) is removed; files that cannot join
// a study are logged and left.
func (g *Gateway) Recover(ctx context.Context) error {
	entries, err := os.ReadDir(g.spool.Dir())
	if err != nil {
		return fmt.Errorf("gateway: recover: %w", err)
	}
	n := 0
	var batch []indexItem
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".dcm") {
			continue
		}
		sop := strings.TrimSuffix(name, ".dcm")
		if _, err := g.store.Instance(ctx, sop); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("gateway: recover: %w", err)
		}
		path := filepath.Join(g.spool.Dir(), name)
		if err := spool.Verify(path); errors.Is(err, spool.ErrCorrupt) {
			// Its name reached the disk before its data: never
			// acknowledged, so the sender still has it.
			g.log.Warn("dropping spooled file damaged by a crash", "path", path, "err", err)
			_ = os.Remove(path)
			continue
		} else if err != nil && !errors.Is(err, spool.ErrNoMark) {
			g.log.Warn("spooled file cannot be verified", "path", path, "err", err)
			continue
		}
		f, err := mis.ReadFile(path)
		if err != nil {
			g.log.Warn("spooled file cannot join a study", "path", path, "err", err)
			continue
		}
		meta, err := dataset.ReadFileMetaFile(path)
		if err != nil {
			g.log.Warn("spooled file has no usable meta header", "path", path, "err", err)
			continue
		}
		st := spool.Stored{Path: path, SOPInstanceUID: sop, SOPClassUID: f.SOPClassUID, StudyInstanceUID: f.StudyInstanceUID,
			SeriesInstanceUID: f.SeriesInstanceUID, TransferSyntaxUID: meta.TransferSyntaxUID, CallingAETitle: meta.SourceAETitle}
		it, err := g.indexRow(st, "", header{f, nil})
		if err != nil {
			g.log.Warn("spooled file cannot be indexed", "path", path, "err", err)
			continue
		}
		batch = append(batch, it)
		if len(batch) == maxIndexBatch {
			g.indexer.write(ctx, batch)
			batch = batch[:0]
		}
		n++
	}
	// At start, the rows are written before anything else runs.
	if len(batch) > 0 {
		g.indexer.write(ctx, batch)
	}
	if n > 0 {
		g.log.Info("recovered spooled instances", "count", n)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
