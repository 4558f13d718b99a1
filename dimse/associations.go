package dimse

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"dicomgate/dimse/ul"
)

// LiveAssociation is a snapshot of one established association, for
// operators: who is sending, since when, and how much has arrived.
type LiveAssociation struct {
	RemoteAddr     string    // the peer's transport address
	CallingAETitle string    // the peer's AE title, as it announced it
	CalledAETitle  string    // this server's AE title, as the peer called it
	TLS            bool      // the association runs over DICOM TLS
	Instances      int64     // C-STORE requests stored successfully so far
	Since          time.Time // when the association was accepted
}

// liveAssociation is the server's record of an established association.
// Its counter is the only thing the C-STORE path touches: an atomic add,
// no lock.
type liveAssociation struct {
	a         *ul.Association // aborted when the server shuts down
	info      AssociationInfo
	since     time.Time
	instances atomic.Int64
}

// stored counts one instance stored on the association.
func (la *liveAssociation) stored() { la.instances.Add(1) }

// liveAssociations is the set of a Server's established associations: what
// Associations lists and what shutdown aborts. Its mutex is taken when an
// association starts and ends, when a snapshot is made and at shutdown,
// never per message. The zero value is ready to use.
type liveAssociations struct {
	mu     sync.Mutex
	m      map[*liveAssociation]struct{}
	closed bool // abortAll has run: no more associations
}

// add records an established association; it reports false, recording
// nothing, once abortAll has run, and the caller must then abort a itself.
func (l *liveAssociations) add(a *ul.Association, info AssociationInfo) (*liveAssociation, bool) {
	la := &liveAssociation{a: a, info: info, since: time.Now()}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false
	}
	if l.m == nil {
		l.m = map[*liveAssociation]struct{}{}
	}
	l.m[la] = struct{}{}
	return la, true
}

// abortAll aborts every association recorded and refuses later ones, so
// that an association accepted just as the server stops does not keep it
// waiting.
func (l *liveAssociations) abortAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for la := range l.m {
		go la.a.AbortAndClose()
	}
}

func (l *liveAssociations) remove(la *liveAssociation) {
	l.mu.Lock()
	delete(l.m, la)
	l.mu.Unlock()
}

// Associations returns a snapshot of the associations established now,
// oldest first. Associations still negotiating, or rejected, are not
// listed. It is safe to call while the server runs.
func (s *Server) Associations() []LiveAssociation {
	s.live.mu.Lock()
	out := make([]LiveAssociation, 0, len(s.live.m))
	for la := range s.live.m {
		out = append(out, LiveAssociation{
			RemoteAddr:     addrString(la.info.RemoteAddr),
			CallingAETitle: la.info.CallingAETitle,
			CalledAETitle:  la.info.CalledAETitle,
			TLS:            la.info.TLS,
			Instances:      la.instances.Load(),
			Since:          la.since,
		})
	}
	s.live.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
