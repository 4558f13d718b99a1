package mis

import (
	"testing"

	"dicomgate/dimse/dicomtest"
)

// TestPatientIdentity checks the external patient id facts the gateway
// routes on: the top-level Patient ID, not the ones nested in sequences.
func TestPatientIdentity(t *testing.T) {
	in, err := ReadFile(dicomtest.PydicomFile(t, "CT_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if in.PatientID != "1CT1" || in.IssuerOfPatientID != "" {
		t.Fatalf("PatientID %q, issuer %q; want 1CT1 and none", in.PatientID, in.IssuerOfPatientID)
	}
}
