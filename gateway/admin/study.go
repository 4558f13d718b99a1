package admin

import (
	"bytes"
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"dicomgate/gateway"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/mis"
	"dicomgate/previews"
)

// maxUIDLen is PS3.5's limit on a UID.
const maxUIDLen = 64

type seriesView struct {
	UID         string
	Number      string
	Modality    string
	Description string
	Instances   int
	HasImage    bool
	rep         store.Instance // the instance its thumbnail shows
	num         int
}

type studyCan struct {
	DeliverNow, Release, DeliverToPatient, Retry, Discard bool
	// CreatePickup offers the DOPU package form: the study can be
	// released and has no pick-up registration standing.
	CreatePickup bool
}

type studyView struct {
	page
	Study    store.Study
	Series   []seriesView
	Events   []store.Event
	Jobs     []store.Job
	Links    []store.PatientLink
	Link     *store.PatientLink // the study's own patient mapping
	Decision route.Decision
	Audit    []store.AuditEntry
	Can      studyCan
	// Error is why the last action failed; Errors are form field errors.
	Error  string
	Errors map[string]string
	Chosen string
	// Pickup is the study's pick-up registration, PickupCan its actions.
	Pickup     *store.Pickup
	PickupCan  pickupCan
	PickupForm pickupForm
}

// studyUID reads and bounds the :uid parameter.
func studyUID(c *gin.Context) (string, bool) {
	uid := c.Param("uid")
	return uid, uid != "" && len(uid) <= maxUIDLen
}

// studyOf loads the study of the :uid parameter; when there is none (404)
// or the store fails, it has answered and reports false.
func (s *Server) studyOf(c *gin.Context) (store.Study, bool) {
	uid, ok := studyUID(c)
	if !ok {
		s.errorPage(c, http.StatusNotFound, "No such study.")
		return store.Study{}, false
	}
	st, err := s.db.Study(c.Request.Context(), uid)
	if err != nil {
		s.fail(c, err)
		return store.Study{}, false
	}
	return st, true
}

func (s *Server) loadStudyView(c *gin.Context, uid string) (*studyView, error) {
	ctx := c.Request.Context()
	st, err := s.db.Study(ctx, uid)
	if err != nil {
		return nil, err
	}
	v := &studyView{page: s.pageFor(c, "dashboard"), Study: st, Errors: map[string]string{}}
	ins, err := s.db.StudyInstances(ctx, uid)
	if err != nil {
		return nil, err
	}
	v.Series = seriesOf(ins)
	if v.Events, err = s.db.Events(ctx, uid); err != nil {
		return nil, err
	}
	if v.Jobs, err = s.db.Jobs(ctx, uid); err != nil {
		return nil, err
	}
	if v.Links, err = s.db.Links(ctx); err != nil {
		return nil, err
	}
	ext := gateway.ExternalID(st.PatientID, st.IssuerOfPatientID)
	if i := slices.IndexFunc(v.Links, func(l store.PatientLink) bool { return l.ExternalID == ext }); i >= 0 {
		v.Link = &v.Links[i]
	}
	if v.IsAdmin {
		if v.Audit, err = s.db.Audit(ctx, store.AuditFilter{StudyUID: uid, Limit: 50}); err != nil {
			return nil, err
		}
	}
	if v.Pickup, err = s.studyPickup(ctx, st); err != nil {
		return nil, err
	}
	if v.Pickup != nil {
		v.PickupCan = pickupActions(*v.Pickup, v.IsAdmin)
	}
	v.Decision = s.gw.Decide(st)
	rel := releasable(st.State)
	v.Can = studyCan{
		DeliverNow:       st.State == store.StateReceiving,
		Release:          rel,
		DeliverToPatient: rel,
		Retry:            st.State == store.StateFailed,
		// Not while a delivery is under way, nor twice.
		Discard:      st.State != store.StateRendering && st.State != store.StateUploading && st.State != store.StateDiscarded,
		CreatePickup: rel && !pickupActive(v.Pickup),
	}
	return v, nil
}

// seriesOf groups a study's instances into series, ordered by series
// number, each with the middle image (by instance number) as its face.
func seriesOf(ins []store.Instance) []seriesView {
	type member struct {
		in  store.Instance
		num int
		img bool
	}
	by := map[string][]member{}
	views := map[string]*seriesView{}
	var order []string
	for _, in := range ins {
		var f mis.Instance
		_ = json.Unmarshal(in.Facts, &f) // facts the gateway wrote; a bad row only loses its labels
		sv := views[in.SeriesUID]
		if sv == nil {
			sv = &seriesView{UID: in.SeriesUID, Modality: f.Modality, Description: f.SeriesDescription, num: 1 << 30}
			if f.SeriesNumber != nil {
				sv.Number, sv.num = strconv.Itoa(*f.SeriesNumber), *f.SeriesNumber
			}
			views[in.SeriesUID] = sv
			order = append(order, in.SeriesUID)
		}
		sv.Instances++
		n := 0
		if f.InstanceNumber != nil {
			n = *f.InstanceNumber
		}
		by[in.SeriesUID] = append(by[in.SeriesUID], member{in: in, num: n, img: f.HasPixelData})
	}
	out := make([]seriesView, 0, len(order))
	for _, uid := range order {
		sv := views[uid]
		var imgs []member
		for _, m := range by[uid] {
			if m.img {
				imgs = append(imgs, m)
			}
		}
		if len(imgs) > 0 {
			sort.SliceStable(imgs, func(i, j int) bool { return imgs[i].num < imgs[j].num })
			sv.HasImage, sv.rep = true, imgs[len(imgs)/2].in
		}
		out = append(out, *sv)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].num < out[j].num })
	return out
}

func (s *Server) study(c *gin.Context) {
	uid, ok := studyUID(c)
	if !ok {
		s.errorPage(c, http.StatusNotFound, "No such study.")
		return
	}
	v, err := s.loadStudyView(c, uid)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.audit(c, "view-study", uid, v.Study.PatientID, ""); err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "study", v)
}

// thumbnail renders a series' representative image, cached in memory.
func (s *Server) thumbnail(c *gin.Context) {
	series := c.Param("series")
	if series == "" || len(series) > maxUIDLen {
		s.errorPage(c, http.StatusNotFound, "No such series.")
		return
	}
	st, ok := s.studyOf(c)
	if !ok {
		return
	}
	ins, err := s.db.StudyInstances(c.Request.Context(), st.StudyUID)
	if err != nil {
		s.fail(c, err)
		return
	}
	var rep *store.Instance
	for _, sv := range seriesOf(ins) {
		if sv.UID == series && sv.HasImage {
			rep = &sv.rep
		}
	}
	if rep == nil {
		s.errorPage(c, http.StatusNotFound, "This series has no image.")
		return
	}
	// A thumbnail shows patient pixels: audited, but once per session
	// and study per viewAuditEvery, as a study page loads many.
	if err := s.auditView(c, "view-thumbnail", st.StudyUID, st.PatientID); err != nil {
		s.fail(c, err)
		return
	}
	size := s.cfg.Previews.ThumbnailSize
	key := fmt.Sprintf("%s@%d", rep.SOPInstanceUID, size)
	jpg, ok := s.thumbs.get(key)
	if !ok {
		jpg, err = s.thumbs.render(key, func() ([]byte, error) {
			r, err := previews.RenderFile(rep.Path, s.cfg.Previews)
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			if err := r.EncodeJPEG(&b, size); err != nil {
				return nil, err
			}
			return b.Bytes(), nil
		})
		if err != nil {
			s.log.Warn("admin: thumbnail", "sop", rep.SOPInstanceUID, "err", err)
			s.errorPage(c, http.StatusUnprocessableEntity, "This image cannot be rendered.")
			return
		}
	}
	c.Header("Cache-Control", "private, max-age=300")
	c.Data(http.StatusOK, "image/jpeg", jpg)
}

// thumbCache is an LRU of encoded thumbnails bounded in bytes; rendering
// runs at most two at a time (a full-size frame each).
type thumbCache struct {
	max  int
	sem  chan struct{}
	mu   sync.Mutex
	size int
	ll   *list.List
	m    map[string]*list.Element
}

type thumbEntry struct {
	key string
	jpg []byte
}

func newThumbCache(maxBytes int) *thumbCache {
	return &thumbCache{max: maxBytes, sem: make(chan struct{}, 2), ll: list.New(), m: map[string]*list.Element{}}
}

func (t *thumbCache) get(key string) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	if !ok {
		return nil, false
	}
	t.ll.MoveToFront(e)
	return e.Value.(*thumbEntry).jpg, true
}

func (t *thumbCache) render(key string, fn func() ([]byte, error)) ([]byte, error) {
	t.sem <- struct{}{}
	defer func() { <-t.sem }()
	if jpg, ok := t.get(key); ok {
		return jpg, nil
	}
	jpg, err := fn()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[key]; !ok && len(jpg) <= t.max {
		t.m[key] = t.ll.PushFront(&thumbEntry{key: key, jpg: jpg})
		t.size += len(jpg)
		for t.size > t.max {
			last := t.ll.Back()
			ent := last.Value.(*thumbEntry)
			t.ll.Remove(last)
			delete(t.m, ent.key)
			t.size -= len(ent.jpg)
		}
	}
	return jpg, nil
}

// studyAct is one action on the study page.
type studyAct int

const (
	actDeliverNow studyAct = iota
	actRelease
	actDeliverToPatient
	actRetry
	actDiscard
)

func (s *Server) studyAction(act studyAct) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		st, ok := s.studyOf(c)
		if !ok {
			return
		}
		uid := st.StudyUID
		var (
			name, detail, flash string
			fieldErrs           = map[string]string{}
			chosen              string
			err                 error
		)
		switch act {
		case actDeliverNow:
			name, flash = "deliver-now", "The quiet period was ended; the study is being routed."
			err = s.gw.DeliverNow(ctx, uid)
		case actRelease:
			a := route.Action(c.PostForm("action"))
			name, detail = "release", "to "+string(a)
			if a != route.ActionRecord && a != route.ActionDOPU {
				fieldErrs["action"] = "Choose the patient's record or a pick-up package."
				break
			}
			flash = fmt.Sprintf("The study was released to %s.", a)
			err = s.gw.Release(ctx, uid, a)
		case actDeliverToPatient:
			name = "deliver-to-patient"
			chosen = c.PostForm("external_id")
			var l store.PatientLink
			if chosen == "" || len(chosen) > maxField {
				fieldErrs["external_id"] = "Choose a connected patient."
			} else if l, err = s.db.Link(ctx, chosen); errors.Is(err, store.ErrNotFound) {
				fieldErrs["external_id"], err = "That patient is not connected.", nil
			} else if err != nil {
				break
			}
			if c.PostForm("confirm") != "1" {
				fieldErrs["confirm"] = "Confirm that this study belongs to the chosen patient."
			}
			if len(fieldErrs) > 0 {
				break
			}
			ext := gateway.ExternalID(st.PatientID, st.IssuerOfPatientID)
			detail = fmt.Sprintf("patient %s mapped to record %s of connected patient %s", ext, l.RecordID, chosen)
			flash = "The study goes to the chosen patient's record."
			err = s.deliverToPatient(c, st, store.PatientLink{ExternalID: ext, PersonID: l.PersonID, RecordID: l.RecordID, AuthorizedAt: s.cfg.Now()})
		case actRetry:
			name, flash = "retry", "The delivery was queued again."
			err = s.gw.Retry(ctx, uid)
		case actDiscard:
			name, flash = "discard", "The study was discarded; its files stay in the spool."
			err = s.gw.Discard(ctx, uid)
		}
		if len(fieldErrs) > 0 || err != nil {
			s.studyActionFailed(c, st, name, detail, fieldErrs, err, func(v *studyView) { v.Chosen = chosen })
			return
		}
		if err := s.audit(c, name, uid, st.PatientID, detail); err != nil {
			s.fail(c, err)
			return
		}
		s.redirect(c, "/studies/"+uid, flash)
	}
}

// deliverToPatient maps the study's patient to a connected patient's
// record, then sends the study there unless the mapping released it
// already (LinkPatient releases studies waiting for a mapping).
func (s *Server) deliverToPatient(c *gin.Context, st store.Study, l store.PatientLink) error {
	ctx := c.Request.Context()
	if err := s.gw.LinkPatient(ctx, l); err != nil {
		return err
	}
	now, err := s.db.Study(ctx, st.StudyUID)
	if err != nil || !releasable(now.State) {
		return err
	}
	return s.gw.Release(ctx, st.StudyUID, route.ActionRecord)
}

// studyActionFailed shows the study page again with the action's field
// errors (fill puts the form's values back) or the gateway's refusal,
// audited.
func (s *Server) studyActionFailed(c *gin.Context, st store.Study, name, detail string, fieldErrs map[string]string, err error, fill func(*studyView)) {
	code := s.auditRefusal(c, name, st.StudyUID, st.PatientID, detail, err)
	if code == 0 {
		return
	}
	v, lerr := s.loadStudyView(c, st.StudyUID)
	if lerr != nil {
		s.fail(c, lerr)
		return
	}
	v.Errors = fieldErrs
	fill(v)
	if err != nil {
		v.Error = err.Error()
	}
	s.render(c, code, "study", v)
}

// auditRefusal audits the gateway's refusal err of an action (nil: the
// form was invalid, nothing to audit) and returns the status to show
// the form again with; it returns 0 when it has answered already, for
// an internal error or a failed audit.
func (s *Server) auditRefusal(c *gin.Context, name, studyUID, patientID, detail string, err error) int {
	if err == nil {
		return http.StatusUnprocessableEntity
	}
	if aerr := s.audit(c, name+"-refused", studyUID, patientID, strings.TrimSpace(detail+" "+err.Error())); aerr != nil {
		s.fail(c, aerr)
		return 0
	}
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		s.fail(c, err)
		return 0
	}
	return code
}
