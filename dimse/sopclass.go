package dimse

import (
	"strings"

	"github.com/suyashkumar/dicom/pkg/uid"
)

// VerificationSOPClass is the Verification SOP Class of PS3.4 annex A.
const VerificationSOPClass = "1.2.840.10008.1.1"

// storagePrefix is the root under which PS3.6 registers the Storage SOP
// Classes of PS3.4 annex B (every "…Storage" class of table B.5-1 with a few
// exceptions listed by the dictionary).
const storagePrefix = "1.2.840.10008.5.1.4.1.1."

// IsStorageSOPClass reports whether u is a Storage SOP Class of PS3.4 annex
// B (including retired ones and the non-patient object storage classes): a
// UID under 1.2.840.10008.5.1.4.1.1, or one the PS3.6 dictionary of
// suyashkumar/dicom names "… Storage".
func IsStorageSOPClass(u string) bool {
	if strings.HasPrefix(u, storagePrefix) {
		return true
	}
	info, err := uid.Lookup(u)
	if err != nil || info.Type != uid.TypeSOPClass {
		return false
	}
	name := info.Name
	if strings.Contains(name, "Storage Commitment") || strings.Contains(name, "Media Storage Directory") {
		return false
	}
	return strings.HasSuffix(name, " Storage") || strings.Contains(name, " Storage - ") || strings.HasSuffix(name, "Storage SOP Class")
}

// isKnownUID reports whether the PS3.6 dictionary knows u at all.
func isKnownUID(u string) bool {
	_, err := uid.Lookup(u)
	return err == nil || strings.HasPrefix(u, "1.2.840.10008.")
}
