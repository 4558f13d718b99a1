package ul

import "fmt"

// State is a state of the association state machine, DICOM PS3.8 table 9-10.
type State int

// States of PS3.8 section 9.2.1, numbered and named as in the standard.
const (
	Sta1  State = 1  // Idle
	Sta2  State = 2  // Transport connection open (awaiting A-ASSOCIATE-RQ PDU)
	Sta3  State = 3  // Awaiting local A-ASSOCIATE response primitive
	Sta4  State = 4  // Awaiting transport connection opening to complete
	Sta5  State = 5  // Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU
	Sta6  State = 6  // Association established and ready for data transfer
	Sta7  State = 7  // Awaiting A-RELEASE-RP PDU
	Sta8  State = 8  // Awaiting local A-RELEASE response primitive
	Sta9  State = 9  // Release collision requestor side; awaiting A-RELEASE response
	Sta10 State = 10 // Release collision acceptor side; awaiting A-RELEASE-RP PDU
	Sta11 State = 11 // Release collision requestor side; awaiting A-RELEASE-RP PDU
	Sta12 State = 12 // Release collision acceptor side; awaiting A-RELEASE response primitive
	Sta13 State = 13 // Awaiting transport connection close indication
)

// String returns the state's name in PS3.8 (Sta1..Sta13).
func (s State) String() string { return fmt.Sprintf("Sta%d", int(s)) }

// Event is an event of the state machine, PS3.8 table 9-10.
type Event int

// Events of PS3.8 section 9.2.2.
const (
	Evt1  Event = 1  // A-ASSOCIATE request (local user)
	Evt2  Event = 2  // Transport connect confirmation (local transport service)
	Evt3  Event = 3  // A-ASSOCIATE-AC PDU received
	Evt4  Event = 4  // A-ASSOCIATE-RJ PDU received
	Evt5  Event = 5  // Transport connection indication
	Evt6  Event = 6  // A-ASSOCIATE-RQ PDU received
	Evt7  Event = 7  // A-ASSOCIATE response primitive (accept)
	Evt8  Event = 8  // A-ASSOCIATE response primitive (reject)
	Evt9  Event = 9  // P-DATA request primitive
	Evt10 Event = 10 // P-DATA-TF PDU received
	Evt11 Event = 11 // A-RELEASE request primitive
	Evt12 Event = 12 // A-RELEASE-RQ PDU received
	Evt13 Event = 13 // A-RELEASE-RP PDU received
	Evt14 Event = 14 // A-RELEASE response primitive
	Evt15 Event = 15 // A-ABORT request primitive
	Evt16 Event = 16 // A-ABORT PDU received
	Evt17 Event = 17 // Transport connection closed indication
	Evt18 Event = 18 // ARTIM timer expired
	Evt19 Event = 19 // Unrecognized or invalid PDU received
)

// String returns the event's name in PS3.8 (Evt1..Evt19).
func (e Event) String() string { return fmt.Sprintf("Evt%d", int(e)) }

// Action is an action of the state machine, PS3.8 tables 9-6 to 9-9.
type Action int

// Actions of PS3.8 section 9.2.3 (association establishment AE-n, data
// transfer DT-n, association release AR-n, association abort AA-n).
const (
	noAction Action = iota
	AE1             // Issue TRANSPORT CONNECT request
	AE2             // Send A-ASSOCIATE-RQ PDU
	AE3             // Issue A-ASSOCIATE confirmation (accept)
	AE4             // Issue A-ASSOCIATE confirmation (reject), close transport
	AE5             // Issue transport connection response, start ARTIM
	AE6             // Stop ARTIM; issue A-ASSOCIATE indication or send A-ASSOCIATE-RJ
	AE7             // Send A-ASSOCIATE-AC PDU
	AE8             // Send A-ASSOCIATE-RJ PDU, start ARTIM
	DT1             // Send P-DATA-TF PDU
	DT2             // Issue P-DATA indication
	AR1             // Send A-RELEASE-RQ PDU
	AR2             // Issue A-RELEASE indication
	AR3             // Issue A-RELEASE confirmation, close transport
	AR4             // Send A-RELEASE-RP PDU, start ARTIM
	AR5             // Stop ARTIM
	AR6             // Issue P-DATA indication (awaiting release response)
	AR7             // Send P-DATA-TF PDU (awaiting local release response)
	AR8             // Issue A-RELEASE indication (release collision)
	AR9             // Send A-RELEASE-RP PDU (collision, requestor)
	AR10            // Issue A-RELEASE confirmation (collision, acceptor)
	AA1             // Send A-ABORT PDU (service-user), start ARTIM
	AA2             // Stop ARTIM, close transport
	AA3             // Issue A-ABORT or A-P-ABORT indication, close transport
	AA4             // Issue A-P-ABORT indication
	AA5             // Stop ARTIM
	AA6             // Ignore PDU
	AA7             // Send A-ABORT PDU
	AA8             // Send A-ABORT PDU (service-provider), issue A-P-ABORT, start ARTIM
)

var actionNames = [...]string{"-", "AE-1", "AE-2", "AE-3", "AE-4", "AE-5", "AE-6", "AE-7", "AE-8",
	"DT-1", "DT-2", "AR-1", "AR-2", "AR-3", "AR-4", "AR-5", "AR-6", "AR-7", "AR-8", "AR-9", "AR-10",
	"AA-1", "AA-2", "AA-3", "AA-4", "AA-5", "AA-6", "AA-7", "AA-8"}

// String returns the action's name in PS3.8 (AE-1, DT-2, ...).
func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// stateTable is PS3.8 table 9-10: for each event, the action taken in each
// state. A missing entry is a state in which the event cannot occur (local
// primitives) or, for a PDU, has no defined action; the machine treats the
// latter as an unexpected PDU (AA-8 semantics) and the former as a caller
// error.
var stateTable = map[Event]map[State]Action{
	Evt1:  {Sta1: AE1},
	Evt2:  {Sta4: AE2},
	Evt3:  {Sta2: AA1, Sta3: AA8, Sta5: AE3, Sta6: AA8, Sta7: AA8, Sta8: AA8, Sta9: AA8, Sta10: AA8, Sta11: AA8, Sta12: AA8, Sta13: AA6},
	Evt4:  {Sta2: AA1, Sta3: AA8, Sta5: AE4, Sta6: AA8, Sta7: AA8, Sta8: AA8, Sta9: AA8, Sta10: AA8, Sta11: AA8, Sta12: AA8, Sta13: AA6},
	Evt5:  {Sta1: AE5},
	Evt6:  {Sta2: AE6, Sta3: AA8, Sta5: AA8, Sta6: AA8, Sta7: AA8, Sta8: AA8, Sta9: AA8, Sta10: AA8, Sta11: AA8, Sta12: AA8, Sta13: AA7},
	Evt7:  {Sta3: AE7},
	Evt8:  {Sta3: AE8},
	Evt9:  {Sta6: DT1, Sta8: AR7},
	Evt10: {Sta2: AA1, Sta3: AA8, Sta5: AA8, Sta6: DT2, Sta7: AR6, Sta8: AA8, Sta9: AA8, Sta10: AA8, Sta11: AA8, Sta12: AA8, Sta13: AA6},
	Evt11: {Sta6: AR1},
	Evt12: {Sta2: AA1, Sta3: AA8, Sta5: AA8, Sta6: AR2, Sta7: AR8, Sta8: AA8, Sta9: AA8, Sta10: AA8, Sta11: AA8, Sta12: AA8, Sta13: AA6},
	Evt13: {Sta2: AA1, Sta3: AA8, Sta5: AA8, Sta6: AA8, Sta7: AR3, Sta8: AA8, Sta9: AA8, Sta10: AR10, Sta11: AR3, Sta12: AA8, Sta13: AA6},
	Evt14: {Sta8: AR4, Sta9: AR9, Sta12: AR4},
	Evt15: {Sta3: AA1, Sta4: AA2, Sta5: AA1, Sta6: AA1, Sta7: AA1, Sta8: AA1, Sta9: AA1, Sta10: AA1, Sta11: AA1, Sta12: AA1},
	Evt16: {Sta2: AA2, Sta3: AA3, Sta5: AA3, Sta6: AA3, Sta7: AA3, Sta8: AA3, Sta9: AA3, Sta10: AA3, Sta11: AA3, Sta12: AA3, Sta13: AA2},
	Evt17: {Sta2: AA5, Sta3: AA4, Sta4: AA4, Sta5: AA4, Sta6: AA4, Sta7: AA4, Sta8: AA4, Sta9: AA4, Sta10: AA4, Sta11: AA4, Sta12: AA4, Sta13: AR5},
	Evt18: {Sta2: AA2, Sta13: AA2},
	Evt19: {Sta2: AA1, Sta3: AA8, Sta5: AA8, Sta6: AA8, Sta7: AA8, Sta8: AA8, Sta9: AA8, Sta10: AA8, Sta11: AA8, Sta12: AA8, Sta13: AA7},
}

// lookup returns the action for ev in s, or noAction.
func lookup(s State, ev Event) Action {
	return stateTable[ev][s]
}
