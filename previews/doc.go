// Package previews renders the pixel data of a DICOM instance into JPEG
// previews and thumbnails.
//
// It implements the image pixel pipeline of DICOM PS3.3 section C.7.6.3
// (Image Pixel Module: photometric interpretations MONOCHROME1/2, RGB,
// YBR_FULL, YBR_FULL_422, YBR_PARTIAL_422/420, YBR_ICT/RCT and PALETTE COLOR
// with normal and segmented palettes, PS3.3 C.7.9), the grayscale
// transformations of PS3.3 C.11 (Modality LUT: rescale or Modality LUT
// Sequence; VOI LUT: window centre/width with the LINEAR, LINEAR_EXACT and
// SIGMOID functions, or VOI LUT Sequence) and the encodings of PS3.5:
// native pixel data (section 8.1, including big endian and deflated
// transfer syntaxes) and encapsulated pixel data (section 8.2 and Annex A.4:
// fragments, Basic and Extended Offset Tables).
//
// The file header is parsed with a streaming reader that stops at the Pixel
// Data element and then reads only the bytes of the one frame it renders
// (the middle frame of a multi-frame instance), so multi-gigabyte files are
// never held in memory.
//
// VOI: the first window of (0028,1050)/(0028,1051) wins, with its VOI LUT
// Function; without a valid window the first VOI LUT Sequence item is used.
// When an instance carries neither, the window is computed from the frame:
// its minimum and maximum modality values are mapped to black and white
// (the same rule as DCMTK's dcm2pnm +Wm, which the tests use as the
// reference). Overlays, shutters and presentation states are not applied.
//
// Compressed frames are decoded by the codecs under previews/codec (JPEG
// baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE). Grayscale output is
// shrunk by area averaging and written by this package's own baseline JPEG
// encoder; colour output is resampled with disintegration/imaging and
// written by image/jpeg.
package previews
