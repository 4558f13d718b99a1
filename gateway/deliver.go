package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"dicomgate/gateway/jobs"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/client"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
	"dicomgate/previews"
)

// Content types of the blobs a study is delivered as.
const (
	contentTypeDICOM = "application/dicom"
	contentTypeJPEG  = "image/jpeg"
)

func (g *Gateway) deliverJob(ctx context.Context, j store.Job) error {
	st, err := g.store.Study(ctx, j.Key)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
	}
	if err != nil {
		return err
	}
	switch st.State {
	case store.StateQueued, store.StateRendering, store.StateUploading:
	default:
		return nil // discarded, held or already delivered meanwhile
	}
	switch route.Action(st.Route) {
	case route.ActionRecord:
		err = g.deliverRecord(ctx, st, j.Attempts)
	case route.ActionDOPU:
		err = g.deliverDOPU(ctx, st, j.Attempts)
	default:
		err = fmt.Errorf("%w: no delivery for route %q", jobs.ErrPermanent, st.Route)
	}
	if err != nil && ctx.Err() == nil {
		g.event(ctx, st.StudyUID, "attempt-failed", "attempt %d: %v", j.Attempts, err)
		if _, uerr := g.store.UpdateStudy(ctx, st.StudyUID, func(s *store.Study) error {
			s.Error, s.Attempts = err.Error(), j.Attempts
			return nil
		}); uerr != nil {
			g.log.Warn("recording a failed attempt", "study", st.StudyUID, "err", uerr)
		}
	}
	return err
}

// deliveryFailed runs when a delivery ran out of attempts.
func (g *Gateway) deliveryFailed(ctx context.Context, j store.Job, err error) {
	if _, uerr := g.store.UpdateStudy(ctx, j.Key, func(s *store.Study) error {
		s.State, s.Error, s.Attempts = store.StateFailed, err.Error(), j.Attempts
		return nil
	}); uerr != nil {
		g.log.Error("recording a failed delivery", "study", j.Key, "err", uerr)
	}
	g.event(ctx, j.Key, "failed", "delivery failed after %d attempts: %v", j.Attempts, err)
}

// blobTask is one step of a delivery: an instance's DICOM file, streamed
// from the spool, or the JPEG previews rendered from it. One render serves
// every preview of an instance: its thumbnail and, for the middle image of
// a series, the series and study previews.
type blobTask struct {
	sop      string    // the instance
	path     string    // its spool file
	previews []preview // none: the file itself
}

// preview is one JPEG rendered from an instance.
type preview struct {
	name    string
	maxSide int
	// alternates are the spool files of other images a series or study
	// preview is rendered from when the task's own image cannot be: the
	// study document names the preview as long as any image of the series
	// (of the study) has pixels.
	alternates []string
}

// pending returns the tasks cut down to the blobs that are not there yet
// (have reports those that are).
func pending(tasks []blobTask, have func(name string) bool) []blobTask {
	var out []blobTask
	for _, t := range tasks {
		if t.previews == nil {
			if !have(t.sop) {
				out = append(out, t)
			}
			continue
		}
		var ps []preview
		for _, p := range t.previews {
			if !have(p.name) {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			t.previews = ps
			out = append(out, t)
		}
	}
	return out
}

// blobCount is the number of blobs the tasks upload.
func blobCount(tasks []blobTask) int {
	n := 0
	for _, t := range tasks {
		n += max(1, len(t.previews))
	}
	return n
}

// deliverRecord streams a study's files and previews into the record and
// writes (or updates) its medical image study thing.
func (g *Gateway) deliverRecord(ctx context.Context, st store.Study, attempt int) error {
	if st.RecordID == "" {
		return fmt.Errorf("%w: study has no record", jobs.ErrPermanent)
	}
	ins, err := g.store.StudyInstances(ctx, st.StudyUID)
	if err != nil {
		return err
	}
	fs, err := facts(ins)
	if err != nil {
		return fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
	}
	typeID, _ := g.cfg.MISVersion.TypeID()

	// The thing may exist already: delivered before, or written just
	// before a crash that lost the reply.
	existing, err := g.findThing(ctx, st, typeID)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	if existing != nil && existing.BlobPayload != nil {
		for _, b := range existing.BlobPayload.Blobs {
			have[b.Info.Name] = true
		}
	}
	if g.eager != nil {
		if err := g.eager.wait(ctx, st.StudyUID); err != nil {
			return err
		}
	}
	uploaded, err := g.store.Blobs(ctx, st.StudyUID)
	if err != nil {
		return err
	}
	done := map[string]store.UploadedBlob{}
	for _, b := range uploaded {
		done[b.Name] = b
	}

	tasks := g.plan(ins, fs)
	todo := pending(tasks, func(name string) bool { return have[name] || done[name].RefURL != "" })
	total, left := blobCount(tasks), blobCount(todo)
	if _, err := g.store.UpdateStudy(ctx, st.StudyUID, func(s *store.Study) error {
		s.State, s.BlobsTotal, s.BlobsDone, s.Attempts = store.StateUploading, total, total-left, attempt
		return nil
	}); err != nil {
		return err
	}
	g.event(ctx, st.StudyUID, "uploading", "%d blobs to upload, %d already there", left, total-left)

	up := func(ctx context.Context, name, contentType string, r io.Reader) (thing.Blob, error) {
		return g.platform.UploadBlob(ctx, st.RecordID, name, contentType, r)
	}
	if err := g.uploadWith(ctx, st, todo, fs, done, up, true); err != nil {
		return err
	}
	key, err := g.putThing(ctx, st, typeID, fs, existing, done)
	if err != nil {
		if wire.CodeOf(err) == wire.InvalidBlobRefURL {
			// The upload tokens lapsed (a long outage): upload again.
			if ferr := g.store.ForgetBlobs(ctx, st.StudyUID); ferr != nil {
				g.log.Warn("forgetting lapsed uploads", "study", st.StudyUID, "err", ferr)
			}
		}
		return err
	}
	after, err := g.markDelivered(ctx, st.StudyUID, ins, func(s *store.Study) {
		s.ThingID, s.VersionStamp = key.ID, key.VersionStamp
	})
	if err != nil {
		return err
	}
	g.event(ctx, st.StudyUID, "delivered", "%d instances in record %s, thing %s version %s", len(ins), st.RecordID, key.ID, key.VersionStamp)
	g.log.Info("study delivered", "study", st.StudyUID, "instances", len(ins), "record", st.RecordID, "state", after.State)
	return nil
}

// markDelivered marks a delivery's instances and its study delivered;
// mutate records what the way of delivery produced. Instances that arrived
// during the delivery send the study back to receiving, to be delivered
// after a quiet period of their own.
func (g *Gateway) markDelivered(ctx context.Context, studyUID string, ins []store.Instance, mutate func(*store.Study)) (store.Study, error) {
	sops := make([]string, len(ins))
	for i, in := range ins {
		sops[i] = in.SOPInstanceUID
	}
	if err := g.store.MarkDelivered(ctx, sops); err != nil {
		return store.Study{}, err
	}
	now := g.cfg.Now()
	return g.store.UpdateStudy(ctx, studyUID, func(s *store.Study) error {
		mutate(s)
		s.Delivered, s.DeliveredAt, s.Error = len(ins), now, ""
		s.BlobsDone = s.BlobsTotal
		s.State = store.StateDelivered
		if s.Instances > len(ins) {
			s.State, s.ReadyAt = store.StateReceiving, now.Add(g.cfg.QuietPeriod)
		}
		return nil
	})
}

// plan lists the blobs of a study: every DICOM file, a thumbnail for every
// instance with pixel data, and a large preview of the middle image of
// each series and of the study's first series with pixels.
func (g *Gateway) plan(ins []store.Instance, fs []mis.Instance) []blobTask {
	paths := make(map[string]string, len(ins))
	for _, in := range ins {
		paths[in.SOPInstanceUID] = in.Path
	}
	b := mis.NewBuilder()
	for _, f := range fs {
		b.Add(f)
	}
	var tasks []blobTask
	render := map[string]int{} // the index in tasks of the previews of an instance with pixel data
	for _, f := range b.Instances() {
		for _, t := range g.instanceTasks(f.SOPInstanceUID, paths[f.SOPInstanceUID], f.HasPixelData) {
			if t.previews != nil {
				render[t.sop] = len(tasks)
			}
			tasks = append(tasks, t)
		}
	}
	study, err := b.Study()
	if err != nil {
		return tasks
	}
	// Each series' images with pixels, the middle one first, then outwards:
	// the first renders the series preview (the first series' also the
	// study preview), the others stand by should it fail.
	type seriesOrder struct {
		uid  string
		sops []string
	}
	var order []seriesOrder
	for _, se := range study.Series {
		var withPixels []string
		for _, img := range se.Images {
			if _, ok := render[img.BlobName]; ok {
				withPixels = append(withPixels, img.BlobName)
			}
		}
		if len(withPixels) > 0 {
			order = append(order, seriesOrder{se.SeriesInstanceUID, middleOut(withPixels)})
		}
	}
	files := func(sops []string) []string {
		out := make([]string, len(sops))
		for i, sop := range sops {
			out[i] = paths[sop]
		}
		return out
	}
	for i, se := range order {
		t := &tasks[render[se.sops[0]]]
		t.previews = append(t.previews, preview{mis.PreviewName(se.uid), g.cfg.Previews.PreviewSize, files(se.sops[1:])})
		if i == 0 {
			var alt []string
			for _, o := range order {
				alt = append(alt, files(o.sops)...)
			}
			t.previews = append(t.previews, preview{mis.PreviewName(study.StudyInstanceUID), g.cfg.Previews.PreviewSize, alt[1:]})
		}
	}
	return tasks
}

// middleOut orders a series' images from the middle one outwards.
func middleOut(sops []string) []string {
	mid := len(sops) / 2
	out := []string{sops[mid]}
	for d := 1; len(out) < len(sops); d++ {
		if mid-d >= 0 {
			out = append(out, sops[mid-d])
		}
		if mid+d < len(sops) {
			out = append(out, sops[mid+d])
		}
	}
	return out
}

// instanceTasks are an instance's own blobs: its file and, when it has
// pixel data, its thumbnail.
func (g *Gateway) instanceTasks(sop, path string, pixels bool) []blobTask {
	tasks := []blobTask{{sop: sop, path: path}}
	if pixels {
		tasks = append(tasks, blobTask{sop: sop, path: path, previews: []preview{{name: mis.PreviewName(sop), maxSide: g.cfg.Previews.ThumbnailSize}}})
	}
	return tasks
}

// uploadFunc uploads one blob.
type uploadFunc func(ctx context.Context, name, contentType string, r io.Reader) (thing.Blob, error)

// uploadWith runs the tasks, g.cfg.Parallel at a time, through up, adding
// each blob to done as it completes (and to the store when remember is
// set, so a resumed delivery skips it). An instance of fs whose pixels
// cannot be rendered loses its HasPixelData: it is delivered without
// previews.
func (g *Gateway) uploadWith(ctx context.Context, st store.Study, todo []blobTask, fs []mis.Instance, done map[string]store.UploadedBlob, up uploadFunc, remember bool) error {
	var (
		mu        sync.Mutex
		noPreview = map[string]bool{}
		firstErr  error
		wg        sync.WaitGroup
		sem       = make(chan struct{}, g.cfg.Parallel)
		progress  = time.Now()
		finished  int
		// Blobs are recorded in batches: a crash loses at most a batch of
		// records, and those blobs are uploaded again.
		unrecorded []store.UploadedBlob
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, t := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			bs, skipped, err := g.uploadOne(ctx, st, t, up)
			mu.Lock()
			defer mu.Unlock()
			if skipped {
				noPreview[t.sop] = true
			}
			for _, b := range bs {
				done[b.Name] = b
			}
			if remember {
				unrecorded = append(unrecorded, bs...)
				if len(unrecorded) >= 64 {
					if err := g.store.RecordBlobs(ctx, unrecorded); err != nil && firstErr == nil {
						firstErr = err
					}
					unrecorded = unrecorded[:0]
				}
			}
			finished += len(bs)
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			if time.Since(progress) > time.Second {
				progress = time.Now()
				n := finished
				finished = 0
				// Progress for the admin UI, written outside the lock;
				// a lost update only delays the progress bar.
				go func() {
					if _, err := g.store.UpdateStudy(context.WithoutCancel(ctx), st.StudyUID, func(s *store.Study) error { s.BlobsDone += n; return nil }); err != nil {
						g.log.Debug("upload progress", "err", err)
					}
				}()
			}
		}()
	}
	wg.Wait()
	if len(unrecorded) > 0 {
		if err := g.store.RecordBlobs(context.WithoutCancel(ctx), unrecorded); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if finished > 0 && firstErr == nil {
		if _, err := g.store.UpdateStudy(context.WithoutCancel(ctx), st.StudyUID, func(s *store.Study) error { s.BlobsDone += finished; return nil }); err != nil {
			g.log.Debug("upload progress", "err", err)
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	for i := range fs {
		if noPreview[fs[i].SOPInstanceUID] {
			fs[i].HasPixelData = false
		}
	}
	return firstErr
}

// uploadOne uploads a task's blobs, returning those uploaded (some, with
// an error, when one upload fails). skipped reports an instance whose
// pixels cannot be rendered (a typed previews error): not a failure, it
// has no previews.
func (g *Gateway) uploadOne(ctx context.Context, st store.Study, t blobTask, up uploadFunc) (_ []store.UploadedBlob, skipped bool, _ error) {
	if t.previews == nil {
		f, err := os.Open(t.path)
		if err != nil {
			return nil, false, fmt.Errorf("%w: spooled file: %v", jobs.ErrPermanent, err)
		}
		defer f.Close()
		b, err := uploadBlob(ctx, st.StudyUID, t.sop, contentTypeDICOM, f, up)
		if err != nil {
			return nil, false, err
		}
		return []store.UploadedBlob{b}, false, nil
	}
	jpegs, err := g.renderPreviews(t.path, t.previews)
	if err != nil {
		g.log.Warn("no preview", "sop", t.sop, "err", err)
		g.event(ctx, st.StudyUID, "no-preview", "%s: %v", t.sop, err)
		skipped = true
		jpegs = g.renderAlternates(t.previews)
	}
	var out []store.UploadedBlob
	for i, p := range t.previews {
		if jpegs[i] == nil {
			continue
		}
		b, err := uploadBlob(ctx, st.StudyUID, p.name, contentTypeJPEG, bytes.NewReader(jpegs[i]), up)
		if err != nil {
			return out, skipped, err
		}
		out = append(out, b)
	}
	return out, skipped, nil
}

// renderAlternates renders the series and study previews of a task whose
// own image could not be rendered from the first of their alternates that
// renders; a preview without one stays nil (no image of its series
// renders, so the study document will not name it).
func (g *Gateway) renderAlternates(ps []preview) [][]byte {
	out := make([][]byte, len(ps))
	failed := map[string]bool{}
	for i, p := range ps {
		for _, path := range p.alternates {
			if failed[path] {
				continue
			}
			jpegs, err := g.renderPreviews(path, []preview{p})
			if err != nil {
				failed[path] = true
				continue
			}
			out[i] = jpegs[0]
			break
		}
	}
	return out
}

// renderPreviews renders the image in path once and encodes each of ps;
// previews of one size (a series and the study preview) share one
// encoding. A preview is a few hundred kilobytes at most.
func (g *Gateway) renderPreviews(path string, ps []preview) ([][]byte, error) {
	rd, err := previews.RenderFile(path, g.cfg.Previews)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ps))
	bySize := map[int][]byte{}
	for i, p := range ps {
		if jpg, ok := bySize[p.maxSide]; ok {
			out[i] = jpg
			continue
		}
		var buf bytes.Buffer
		if err := rd.EncodeJPEG(&buf, p.maxSide); err != nil {
			return nil, err
		}
		out[i], bySize[p.maxSide] = buf.Bytes(), buf.Bytes()
	}
	return out, nil
}

// uploadBlob uploads one blob of a study through up and describes it for
// the store.
func uploadBlob(ctx context.Context, studyUID, name, contentType string, r io.Reader, up uploadFunc) (store.UploadedBlob, error) {
	b, err := up(ctx, name, contentType, r)
	if err != nil {
		return store.UploadedBlob{}, fmt.Errorf("blob %s: %w", name, err)
	}
	ub := store.UploadedBlob{StudyUID: studyUID, Name: name, ContentType: contentType, RefURL: b.RefURL,
		ContentLength: b.Length()}
	if hi := b.Info.HashInfo; hi != nil {
		ub.Hash, ub.BlockSize = hi.Hash, hi.BlockSize()
	}
	return ub, nil
}

// findThing returns the study's thing in its record, or nil.
func (g *Gateway) findThing(ctx context.Context, st store.Study, typeID string) (*thing.Thing, error) {
	q := client.StudyQuery(typeID, st.StudyUID)
	groups, err := g.platform.GetThings(ctx, st.RecordID, q)
	if err != nil {
		return nil, fmt.Errorf("looking for the study's thing: %w", err)
	}
	for _, gr := range groups {
		for _, t := range gr.Things {
			if t != nil && t.Key != nil {
				return t, nil
			}
		}
	}
	return nil, nil
}

// putThing writes the study's MIS thing: a new one, or an update of the
// existing one against its version stamp (retried when another writer
// updated it in between).
func (g *Gateway) putThing(ctx context.Context, st store.Study, typeID string, fs []mis.Instance, existing *thing.Thing, done map[string]store.UploadedBlob) (thing.Key, error) {
	for try := 0; ; try++ {
		t, err := g.thingFor(typeID, fs, existing, done)
		if err != nil {
			return thing.Key{}, fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
		}
		if g.cfg.Signer != nil {
			if err := thing.Sign(t, g.cfg.Signer.Key, g.cfg.Signer.Cert, g.cfg.Signer.Hash); err != nil {
				return thing.Key{}, fmt.Errorf("%w: signing: %v", jobs.ErrPermanent, err)
			}
		}
		keys, err := g.platform.PutThings(ctx, st.RecordID, t)
		if err == nil {
			if len(keys) != 1 {
				return thing.Key{}, fmt.Errorf("PutThings answered %d keys for one thing", len(keys))
			}
			return keys[0], nil
		}
		if wire.CodeOf(err) != wire.VersionStampMismatch || try >= 3 {
			return thing.Key{}, err
		}
		if existing, err = g.findThing(ctx, st, typeID); err != nil {
			return thing.Key{}, err
		}
	}
}

// thingFor builds the thing to put: the whole study for a new thing, or
// the existing thing merged with the instances it lacks.
func (g *Gateway) thingFor(typeID string, fs []mis.Instance, existing *thing.Thing, done map[string]store.UploadedBlob) (*thing.Thing, error) {
	var (
		xmlData []byte
		names   []string
		err     error
	)
	if existing != nil && len(existing.Data) > 0 {
		xmlData, err = mis.Merge(existing.Data[0].Inner, g.cfg.MISVersion, fs...)
		if err != nil {
			return nil, err
		}
		s, err := mis.ParseMIS(xmlData, g.cfg.MISVersion)
		if err != nil {
			return nil, err
		}
		names = s.BlobNames()
	} else {
		b := mis.NewBuilder()
		for _, f := range fs {
			if err := b.Add(f); err != nil {
				return nil, err
			}
		}
		s, err := b.Study()
		if err != nil {
			return nil, err
		}
		if xmlData, err = s.MIS(g.cfg.MISVersion); err != nil {
			return nil, err
		}
		names = s.BlobNames()
	}
	t := &thing.Thing{Type: &thing.TypeID{ID: typeID}, Data: []thing.DataXML{{Inner: xmlData}}, BlobPayload: &thing.BlobPayload{}}
	prev := map[string]thing.Blob{}
	if existing != nil {
		t.Key = existing.Key
		if existing.BlobPayload != nil {
			for _, b := range existing.BlobPayload.Blobs {
				prev[b.Info.Name] = b
			}
		}
	}
	for _, n := range names {
		if b, ok := prev[n]; ok {
			// Kept as it is: sent as information only.
			b.RefURL, b.Base64Data = "", ""
			t.BlobPayload.Blobs = append(t.BlobPayload.Blobs, b)
			continue
		}
		ub, ok := done[n]
		if !ok {
			return nil, fmt.Errorf("blob %s was not uploaded", n)
		}
		length := ub.ContentLength
		t.BlobPayload.Blobs = append(t.BlobPayload.Blobs, thing.Blob{
			Info:          thing.BlobInfo{Name: n, ContentType: ub.ContentType, HashInfo: thing.SHA256BlockInfo(ub.BlockSize, ub.Hash)},
			ContentLength: &length, RefURL: ub.RefURL,
		})
	}
	return t, nil
}
