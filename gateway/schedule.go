package gateway

import (
	"context"
	"errors"
	"fmt"

	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
)

// errSkip aborts a study update that no longer applies (the study moved on).
var errSkip = errors.New("skip")

// Schedule routes every study whose quiet period is over. Run calls it
// when the earliest quiet period ends and at least every 250 ms; tests call
// it directly.
func (g *Gateway) Schedule(ctx context.Context) error {
	due, err := g.store.DueStudies(ctx, g.cfg.Now())
	if err != nil {
		return err
	}
	for _, st := range due {
		if err := g.routeStudy(ctx, st.StudyUID); err != nil {
			g.log.Error("routing study", "study", st.StudyUID, "err", err)
		}
	}
	return nil
}

func (g *Gateway) table() *route.Table {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.routes
}

// Decide returns where the rules would send a study now, without acting:
// the admin UI's dry run.
func (g *Gateway) Decide(st store.Study) route.Decision {
	return g.table().Route(RouteStudy(st))
}

// RouteStudy is what the routing rules match of a study.
func RouteStudy(st store.Study) route.Study {
	return route.Study{
		CallingAE: st.CallingAE, PatientID: st.PatientID, IssuerOfPatient: st.IssuerOfPatientID,
		Modalities: st.Modalities, StudyDescription: st.StudyDescription, ReferringDoctor: st.ReferringPhysician,
	}
}

// routeStudy decides a received study's way. A study already delivered
// into a record goes back to that record as an update, whatever the rules
// say now.
func (g *Gateway) routeStudy(ctx context.Context, uid string) error {
	cur, err := g.store.Study(ctx, uid)
	if err != nil {
		return err
	}
	d := g.Decide(cur)
	link, pickup, err := g.placement(ctx, cur)
	if err != nil {
		return err
	}
	var queue bool
	st, err := g.store.UpdateStudy(ctx, uid, func(s *store.Study) error {
		if s.State != store.StateReceiving {
			return errSkip
		}
		if s.ThingID != "" && s.RecordID != "" {
			s.State, queue = store.StateQueued, true
			return nil
		}
		s.Route, s.RouteReason = string(d.Action), d.String()
		queue = place(s, link, pickup)
		return nil
	})
	if errors.Is(err, errSkip) {
		return nil
	}
	if err != nil {
		return err
	}
	g.event(ctx, uid, "routed", "%s", st.RouteReason)
	if queue {
		return g.enqueue(ctx, uid)
	}
	return nil
}

// placement looks up what place needs to know of a study's patient: the
// Patient Connect mapping and a pick-up registration waiting for a study,
// each nil when there is none. (Looked up before a study update: an
// update's function must not call the store.)
func (g *Gateway) placement(ctx context.Context, s store.Study) (*store.PatientLink, *store.Pickup, error) {
	link, err := g.linkFor(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	pickup, err := g.pickupFor(ctx, s)
	return link, pickup, err
}

// linkFor looks up the Patient Connect mapping of a study's patient; nil
// when there is none.
func (g *Gateway) linkFor(ctx context.Context, s store.Study) (*store.PatientLink, error) {
	l, err := g.store.Link(ctx, ExternalID(s.PatientID, s.IssuerOfPatientID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// place moves a routed study to the state its route allows now, reporting
// whether it is ready for delivery. link is the patient's Patient Connect
// mapping and pickup a pick-up registration waiting for a study, if any.
// A study routed to the record of a patient who is not connected but was
// registered for a pick-up is packaged instead: the front desk's
// registration is the more specific decision.
func place(s *store.Study, link *store.PatientLink, pickup *store.Pickup) bool {
	switch route.Action(s.Route) {
	case route.ActionRecord:
		if link != nil {
			s.PersonID, s.RecordID = link.PersonID, link.RecordID
			s.State = store.StateQueued
			return true
		}
		if pickup == nil {
			s.State = store.StateWaitingPatient
			return false
		}
		s.Route, s.RouteReason = string(route.ActionDOPU), s.RouteReason+"; no Patient Connect, pick-up registered"
		fallthrough
	case route.ActionDOPU:
		if pickup == nil {
			s.State = store.StateWaitingPickup
			return false
		}
		s.PickupID, s.State = pickup.ID, store.StateQueued
		return true
	default:
		s.State = store.StateHeld
		return false
	}
}

func (g *Gateway) enqueue(ctx context.Context, uid string) error {
	if _, err := g.store.EnqueueJob(ctx, jobDeliver, uid, g.cfg.Now(), g.cfg.MaxAttempts); err != nil {
		return err
	}
	g.runner.Wake()
	return nil
}

// DeliverNow ends a receiving study's quiet period at once.
func (g *Gateway) DeliverNow(ctx context.Context, uid string) error {
	_, err := g.store.UpdateStudy(ctx, uid, func(s *store.Study) error {
		if s.State != store.StateReceiving {
			return fmt.Errorf("%w: study is %s, not receiving", ErrNotDeliverable, s.State)
		}
		s.ReadyAt = g.cfg.Now()
		return nil
	})
	if err != nil {
		return err
	}
	g.event(ctx, uid, "deliver-now", "quiet period skipped")
	return g.routeStudy(ctx, uid)
}

// Release sends a held (or waiting) study on the given way: staff's
// decision overrides the rules.
func (g *Gateway) Release(ctx context.Context, uid string, action route.Action) error {
	if action != route.ActionRecord && action != route.ActionDOPU {
		return fmt.Errorf("%w: release to %q", ErrNotDeliverable, action)
	}
	cur, err := g.store.Study(ctx, uid)
	if err != nil {
		return err
	}
	link, pickup, err := g.placement(ctx, cur)
	if err != nil {
		return err
	}
	var queue bool
	_, err = g.store.UpdateStudy(ctx, uid, func(s *store.Study) error {
		switch s.State {
		case store.StateHeld, store.StateWaitingPatient, store.StateWaitingPickup, store.StateFailed:
		default:
			return fmt.Errorf("%w: study is %s", ErrNotDeliverable, s.State)
		}
		s.Route, s.RouteReason, s.Error = string(action), string(action)+" (staff)", ""
		queue = place(s, link, pickup)
		return nil
	})
	if err != nil {
		return err
	}
	g.event(ctx, uid, "released", "staff sent the study to %s", action)
	if queue {
		return g.enqueue(ctx, uid)
	}
	return nil
}

// Retry queues a failed study's delivery again.
func (g *Gateway) Retry(ctx context.Context, uid string) error {
	_, err := g.store.UpdateStudy(ctx, uid, func(s *store.Study) error {
		if s.State != store.StateFailed {
			return fmt.Errorf("%w: study is %s, not failed", ErrNotDeliverable, s.State)
		}
		s.State, s.Error, s.Attempts = store.StateReceiving, "", 0
		s.ReadyAt = g.cfg.Now()
		return nil
	})
	if err != nil {
		return err
	}
	g.event(ctx, uid, "retry", "staff retried the delivery")
	return g.routeStudy(ctx, uid)
}

// Discard stops a study from being delivered. Its files stay in the spool.
func (g *Gateway) Discard(ctx context.Context, uid string) error {
	_, err := g.store.UpdateStudy(ctx, uid, func(s *store.Study) error {
		switch s.State {
		case store.StateRendering, store.StateUploading:
			return fmt.Errorf("%w: study is being delivered", ErrNotDeliverable)
		}
		s.State = store.StateDiscarded
		return nil
	})
	if err != nil {
		return err
	}
	g.event(ctx, uid, "discarded", "staff discarded the study")
	return nil
}

// LinkPatient records that Patient Connect mapped an external patient id
// to a record, and queues the studies that waited for it.
func (g *Gateway) LinkPatient(ctx context.Context, l store.PatientLink) error {
	if err := g.store.PutLink(ctx, l); err != nil {
		return err
	}
	waiting, err := g.store.Studies(ctx, store.StudyFilter{States: []store.StudyState{store.StateWaitingPatient}, Limit: 10000})
	if err != nil {
		return err
	}
	for _, st := range waiting {
		if ExternalID(st.PatientID, st.IssuerOfPatientID) != l.ExternalID {
			continue
		}
		if err := g.Release(ctx, st.StudyUID, route.ActionRecord); err != nil {
			return err
		}
	}
	return nil
}
