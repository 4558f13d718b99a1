package dimse

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
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
	info      AssociationInfo
	since     time.Time
	instances atomic.Int64
}

// stored counts one instance stored on the association. A nil receiver
// counts nothing, so callers need no check.
func (la *liveAssociation) stored() {
	if la != nil {
		la.instances.Add(1)
	}
}

// liveAssociations is the set of a Server's established associations. Its
// mutex is taken when an association starts and ends and when a snapshot
// is made, never per message. The zero value is ready to use.
type liveAssociations struct {
	mu sync.Mutex
	m  map[*liveAssociation]struct{}
}

func (l *liveAssociations) add(info AssociationInfo) *liveAssociation {
	la := &liveAssociation{info: info, since: time.Now()}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[*liveAssociation]struct{}{}
	}
	l.m[la] = struct{}{}
	l.mu.Unlock()
	return la
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
