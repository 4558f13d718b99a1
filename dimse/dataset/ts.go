// Package dataset reads DICOM data sets as streams, following DICOM PS3.5
// (data structures and encoding) and PS3.10 (the Part 10 file meta
// information): a table of transfer syntaxes with their encodings, a reader
// and writer for the file meta information, and Walk, a streaming element
// walker that checks the structure of a data set and picks a few identifying
// elements without holding any value larger than a UID.
package dataset

// Transfer syntax UIDs of PS3.5 section 10 and PS3.6 annex A.
const (
	ImplicitVRLittleEndian         = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian         = "1.2.840.10008.1.2.1"
	EncapsulatedUncompressedLE     = "1.2.840.10008.1.2.1.98"
	DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian            = "1.2.840.10008.1.2.2"
	JPEGBaseline8Bit               = "1.2.840.10008.1.2.4.50"
	JPEGExtended12Bit              = "1.2.840.10008.1.2.4.51"
	JPEGLossless                   = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1                = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless                 = "1.2.840.10008.1.2.4.80"
	JPEGLSNearLossless             = "1.2.840.10008.1.2.4.81"
	JPEG2000Lossless               = "1.2.840.10008.1.2.4.90"
	JPEG2000                       = "1.2.840.10008.1.2.4.91"
	JPEG2000MCLossless             = "1.2.840.10008.1.2.4.92"
	JPEG2000MC                     = "1.2.840.10008.1.2.4.93"
	JPIPReferenced                 = "1.2.840.10008.1.2.4.94"
	JPIPReferencedDeflate          = "1.2.840.10008.1.2.4.95"
	MPEG2MPML                      = "1.2.840.10008.1.2.4.100"
	MPEG2MPHL                      = "1.2.840.10008.1.2.4.101"
	MPEG4HP41                      = "1.2.840.10008.1.2.4.102"
	MPEG4HP41BD                    = "1.2.840.10008.1.2.4.103"
	MPEG4HP422D                    = "1.2.840.10008.1.2.4.104"
	MPEG4HP423D                    = "1.2.840.10008.1.2.4.105"
	MPEG4HP42Stereo                = "1.2.840.10008.1.2.4.106"
	HEVCMP51                       = "1.2.840.10008.1.2.4.107"
	HEVCM10P51                     = "1.2.840.10008.1.2.4.108"
	HTJ2KLossless                  = "1.2.840.10008.1.2.4.201"
	HTJ2KLosslessRPCL              = "1.2.840.10008.1.2.4.202"
	HTJ2K                          = "1.2.840.10008.1.2.4.203"
	JPIPHTJ2KReferenced            = "1.2.840.10008.1.2.4.204"
	JPIPHTJ2KReferencedDeflate     = "1.2.840.10008.1.2.4.205"
	RLELossless                    = "1.2.840.10008.1.2.5"
	SMPTE211020                    = "1.2.840.10008.1.2.7.1"
	DeflatedImageFrameCompression  = "1.2.840.10008.1.2.8.1"
)

// Encoding is how a transfer syntax encodes the data set itself (pixel data
// compression aside).
type Encoding struct {
	Implicit  bool // implicit VR (only with little endian)
	BigEndian bool
	Deflated  bool // the whole data set is a raw deflate stream (RFC 1951)
}

// TransferSyntax describes one transfer syntax this package understands.
type TransferSyntax struct {
	UID  string
	Name string
	Encoding
	// Encapsulated is set for syntaxes whose pixel data is encapsulated
	// (compressed or otherwise fragmented), PS3.5 A.4.
	Encapsulated bool
}

var transferSyntaxes = func() map[string]TransferSyntax {
	m := map[string]TransferSyntax{}
	add := func(uid, name string, enc Encoding, encapsulated bool) {
		m[uid] = TransferSyntax{UID: uid, Name: name, Encoding: enc, Encapsulated: encapsulated}
	}
	add(ImplicitVRLittleEndian, "Implicit VR Little Endian", Encoding{Implicit: true}, false)
	add(ExplicitVRLittleEndian, "Explicit VR Little Endian", Encoding{}, false)
	add(DeflatedExplicitVRLittleEndian, "Deflated Explicit VR Little Endian", Encoding{Deflated: true}, false)
	add(ExplicitVRBigEndian, "Explicit VR Big Endian", Encoding{BigEndian: true}, false)
	for uid, name := range map[string]string{
		EncapsulatedUncompressedLE:    "Encapsulated Uncompressed Explicit VR Little Endian",
		JPEGBaseline8Bit:              "JPEG Baseline (Process 1)",
		JPEGExtended12Bit:             "JPEG Extended (Process 2 & 4)",
		JPEGLossless:                  "JPEG Lossless, Non-Hierarchical (Process 14)",
		JPEGLosslessSV1:               "JPEG Lossless, First-Order Prediction (Process 14 SV1)",
		JPEGLSLossless:                "JPEG-LS Lossless",
		JPEGLSNearLossless:            "JPEG-LS Lossy (Near-Lossless)",
		JPEG2000Lossless:              "JPEG 2000 (Lossless Only)",
		JPEG2000:                      "JPEG 2000",
		JPEG2000MCLossless:            "JPEG 2000 Part 2 Multi-component (Lossless Only)",
		JPEG2000MC:                    "JPEG 2000 Part 2 Multi-component",
		JPIPReferenced:                "JPIP Referenced",
		JPIPReferencedDeflate:         "JPIP Referenced Deflate",
		MPEG2MPML:                     "MPEG2 Main Profile / Main Level",
		MPEG2MPHL:                     "MPEG2 Main Profile / High Level",
		MPEG4HP41:                     "MPEG-4 AVC/H.264 High Profile / Level 4.1",
		MPEG4HP41BD:                   "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
		MPEG4HP422D:                   "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
		MPEG4HP423D:                   "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
		MPEG4HP42Stereo:               "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
		HEVCMP51:                      "HEVC/H.265 Main Profile / Level 5.1",
		HEVCM10P51:                    "HEVC/H.265 Main 10 Profile / Level 5.1",
		HTJ2KLossless:                 "High-Throughput JPEG 2000 (Lossless Only)",
		HTJ2KLosslessRPCL:             "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)",
		HTJ2K:                         "High-Throughput JPEG 2000",
		JPIPHTJ2KReferenced:           "JPIP HTJ2K Referenced",
		JPIPHTJ2KReferencedDeflate:    "JPIP HTJ2K Referenced Deflate",
		RLELossless:                   "RLE Lossless",
		SMPTE211020:                   "SMPTE ST 2110-20 Uncompressed Progressive Active Video",
		DeflatedImageFrameCompression: "Deflated Image Frame Compression",
	} {
		add(uid, name, Encoding{}, true)
	}
	return m
}()

// LookupTransferSyntax returns the transfer syntax with the given UID, and
// whether this package knows it.
func LookupTransferSyntax(uid string) (TransferSyntax, bool) {
	ts, ok := transferSyntaxes[uid]
	return ts, ok
}

// KnownTransferSyntaxes returns the UIDs of every transfer syntax the
// package knows, in no particular order.
func KnownTransferSyntaxes() []string {
	out := make([]string, 0, len(transferSyntaxes))
	for uid := range transferSyntaxes {
		out = append(out, uid)
	}
	return out
}
