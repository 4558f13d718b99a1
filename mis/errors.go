package mis

import "errors"

// Errors returned for headers that lack what an MIS needs. They are wrapped
// with context; test with errors.Is.
var (
	// ErrNoStudyUID reports an instance without Study Instance UID (0020,000D).
	ErrNoStudyUID = errors.New("mis: no study instance uid (0020,000D)")
	// ErrNoSeriesUID reports an instance without Series Instance UID (0020,000E).
	ErrNoSeriesUID = errors.New("mis: no series instance uid (0020,000E)")
	// ErrNoSOPInstanceUID reports an instance without SOP Instance UID (0008,0018).
	ErrNoSOPInstanceUID = errors.New("mis: no sop instance uid (0008,0018)")
	// ErrInvalidUID reports a UID that is not a DICOM UID (digits and dots, at most 64 characters).
	ErrInvalidUID = errors.New("mis: invalid uid")
	// ErrNoStudyDate reports a study none of whose instances carries a usable
	// date (study, series, acquisition or content date); MIS "when" is required.
	ErrNoStudyDate = errors.New("mis: no usable study date")
	// ErrStudyMismatch reports an instance that belongs to another study than the builder's.
	ErrStudyMismatch = errors.New("mis: instance belongs to another study")
	// ErrEmptyStudy reports a build without instances.
	ErrEmptyStudy = errors.New("mis: study has no instances")
	// ErrTooManyInstances reports a study beyond MaxInstances.
	ErrTooManyInstances = errors.New("mis: too many instances in study")
	// ErrBadVersion reports an MIS version other than V1 and V2.
	ErrBadVersion = errors.New("mis: unknown medical image study version")
	// ErrBadMIS reports existing MIS XML that cannot be parsed or lacks required parts.
	ErrBadMIS = errors.New("mis: malformed medical image study xml")
	// ErrHeader reports a DICOM header the parser rejected.
	ErrHeader = errors.New("mis: unreadable dicom header")
)
