package admin

import (
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/gin-gonic/gin"

	"dicomgate/gateway/store"
)

// dashboardStates orders the state counts on the dashboard: the way a
// study goes, then where it stops.
func dashboardStates() []store.StudyState {
	return []store.StudyState{
		store.StateReceiving, store.StateQueued, store.StateRendering, store.StateUploading, store.StateDelivered,
		store.StateWaitingPatient, store.StateWaitingPickup, store.StateHeld, store.StateFailed, store.StateDiscarded,
	}
}

type stateCount struct {
	State store.StudyState
	N     int
}

type liveView struct {
	// HasAssociations is false when the DICOM listener does not report
	// its associations.
	HasAssociations bool
	Associations    []AssociationSnapshot
	Counts          []stateCount
	Studies         []store.Study
	Filter          store.StudyState
	Updated         time.Time
}

type dashboardView struct {
	page
	liveView
}

func (s *Server) live(c *gin.Context) (liveView, error) {
	ctx := c.Request.Context()
	v := liveView{Updated: s.cfg.Now()}
	if s.cfg.Associations != nil {
		v.HasAssociations = true
		v.Associations = s.cfg.Associations.Associations()
		sort.Slice(v.Associations, func(i, j int) bool { return v.Associations[i].Since.Before(v.Associations[j].Since) })
	}
	counts, err := s.db.StudyCounts(ctx)
	if err != nil {
		return v, err
	}
	for _, st := range dashboardStates() {
		v.Counts = append(v.Counts, stateCount{State: st, N: counts[st]})
	}
	f := store.StudyFilter{Limit: 200}
	if st := store.StudyState(c.Query("state")); slices.Contains(dashboardStates(), st) {
		f.States, v.Filter = []store.StudyState{st}, st
	}
	v.Studies, err = s.db.Studies(ctx, f)
	return v, err
}

func (s *Server) dashboard(c *gin.Context) {
	lv, err := s.live(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.audit(c, "view-dashboard", "", "", "study list"); err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "dashboard", dashboardView{page: s.pageFor(c, "dashboard"), liveView: lv})
}

// dashboardFragment is what the dashboard polls every 2 s.
func (s *Server) dashboardFragment(c *gin.Context) {
	lv, err := s.live(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.auditView(c, "view-dashboard", "", ""); err != nil {
		s.fail(c, err)
		return
	}
	s.renderTemplate(c, http.StatusOK, "dashboard", "live", dashboardView{page: s.pageFor(c, "dashboard"), liveView: lv})
}
