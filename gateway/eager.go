package gateway

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/platform/thing"
)

// eager uploads the DICOM file and thumbnail of each instance as soon as
// it is spooled, when its study already routes to a connected patient's
// record, so that after the quiet period only the series and study
// previews and the thing remain to be written. It is an acceleration, not
// a promise: it keeps nothing durable but the uploaded blobs it records,
// drops work when it falls behind, and the delivery uploads whatever is
// missing. A blob it uploaded for a study that then goes elsewhere is
// referenced by no thing, and the platform removes it after its grace
// period.
type eager struct {
	g     *Gateway
	items chan eagerItem

	mu      sync.Mutex
	pending map[string]int // per study: items queued or in flight
	changed chan struct{}  // closed and replaced when pending changes

	cacheMu sync.Mutex
	cache   map[string]eagerDecision
}

type eagerItem struct {
	studyUID string
	path     string
	facts    mis.Instance
}

// eagerDecision caches, for a short while, where a study's instances go.
type eagerDecision struct {
	recordID string // "" when not to a connected record now
	at       time.Time
}

func newEager(g *Gateway) *eager {
	return &eager{g: g, items: make(chan eagerItem, 4096), pending: map[string]int{},
		changed: make(chan struct{}), cache: map[string]eagerDecision{}}
}

// offer queues an instance; when the queue is full the delivery does it.
func (e *eager) offer(it eagerItem) {
	e.add(it.studyUID, 1)
	select {
	case e.items <- it:
	default:
		e.add(it.studyUID, -1)
	}
}

func (e *eager) add(study string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending[study] += n
	if e.pending[study] <= 0 {
		delete(e.pending, study)
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// wait returns once no eager work for the study is queued or in flight.
func (e *eager) wait(ctx context.Context, study string) error {
	for {
		e.mu.Lock()
		n, ch := e.pending[study], e.changed
		e.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// run works the queue with n workers until ctx is done.
func (e *eager) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.work(ctx)
		}()
	}
	wg.Wait()
}

func (e *eager) work(ctx context.Context) {
	var batch []store.UploadedBlob
	var counts []string // the study of each item whose blobs are in batch
	flush := func() {
		if len(batch) > 0 {
			if err := e.g.store.RecordBlobs(context.WithoutCancel(ctx), batch); err != nil {
				e.g.log.Warn("eager upload: recording blobs", "err", err)
			}
		}
		for _, s := range counts {
			e.add(s, -1)
		}
		batch, counts = batch[:0], counts[:0]
	}
	defer flush()
	for {
		var it eagerItem
		select {
		case <-ctx.Done():
			return
		case it = <-e.items:
		}
		batch = append(batch, e.upload(ctx, it)...)
		counts = append(counts, it.studyUID)
		if len(counts) >= 32 || len(e.items) == 0 {
			flush()
		}
	}
}

// upload uploads one instance's file and thumbnail when its study goes to
// a connected record now; failures are left to the delivery.
func (e *eager) upload(ctx context.Context, it eagerItem) []store.UploadedBlob {
	recordID := e.destination(ctx, it.studyUID)
	if recordID == "" {
		return nil
	}
	st := store.Study{StudyUID: it.studyUID, RecordID: recordID}
	up := func(ctx context.Context, name, contentType string, r io.Reader) (thing.Blob, error) {
		return e.g.platform.UploadBlob(ctx, recordID, name, contentType, r)
	}
	var out []store.UploadedBlob
	for _, t := range e.g.instanceTasks(it.facts.SOPInstanceUID, it.path, it.facts.HasPixelData) {
		bs, _, err := e.g.uploadOne(ctx, st, t, up)
		out = append(out, bs...)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				e.g.log.Debug("eager upload failed; the delivery will retry", "sop", t.sop, "err", err)
			}
			return out
		}
	}
	return out
}

// destination returns the record a study goes to now, "" when it does not
// (yet) go to a connected patient's record.
func (e *eager) destination(ctx context.Context, studyUID string) string {
	e.cacheMu.Lock()
	d, ok := e.cache[studyUID]
	e.cacheMu.Unlock()
	if ok && time.Since(d.at) < 2*time.Second {
		return d.recordID
	}
	d = eagerDecision{at: time.Now()}
	if st, err := e.g.store.Study(ctx, studyUID); err == nil && st.State == store.StateReceiving {
		switch {
		case st.ThingID != "" && st.RecordID != "":
			d.recordID = st.RecordID // an update of a delivered study
		case e.g.Decide(st).Action == route.ActionRecord:
			if l, err := e.g.linkFor(ctx, st); err == nil && l != nil {
				d.recordID = l.RecordID
			}
		}
	}
	e.cacheMu.Lock()
	if len(e.cache) > 1024 {
		clear(e.cache)
	}
	e.cache[studyUID] = d
	e.cacheMu.Unlock()
	return d.recordID
}
