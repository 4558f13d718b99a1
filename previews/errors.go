package previews

import "errors"

// Errors returned by Render, always wrapped with the reason; test them with
// errors.Is.
var (
	// ErrNotDICOM means the input is not a DICOM Part 10 file or data set.
	ErrNotDICOM = errors.New("previews: not a DICOM file")
	// ErrNoPixelData means the instance has no Pixel Data element (structured
	// reports, presentation states, key object selections, RT plans,
	// waveforms): there is nothing to render, which is not a failure.
	ErrNoPixelData = errors.New("previews: no pixel data")
	// ErrUnsupportedTransferSyntax means the pixel data is encoded in a
	// transfer syntax this package has no decoder for.
	ErrUnsupportedTransferSyntax = errors.New("previews: unsupported transfer syntax")
	// ErrUnsupported means the pixel data is valid DICOM but uses a feature
	// this package does not render (for example float pixel data or an
	// unknown photometric interpretation).
	ErrUnsupported = errors.New("previews: unsupported pixel format")
	// ErrCorrupt means the file is damaged or inconsistent: truncated,
	// missing required image attributes, or a frame that does not decode.
	ErrCorrupt = errors.New("previews: corrupt file")
	// ErrTooLarge means the image exceeds the limits set in Options.
	ErrTooLarge = errors.New("previews: image too large")
)
