// Package previews holds the benchmarks of dicomgate's preview renderer
// (package dicomgate/previews) on synthetic CT studies from
// dicomgate/bench/ctstudy: 512x512 signed 16-bit CT slices (window 40/400)
// written as DICOM Part 10 files (PS3.10) in explicit VR little endian.
// run.sh runs them, and studybench compares a whole study with Orthanc.
package previews
