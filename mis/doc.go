// Package mis builds HealthVault "medical image study" things (MIS, type ids
// c75651c8-548e-449f-8942-9e6379b0b88a for version 1 and
// cdfc0a9b-6d3b-4d16-afa8-02b86d621a8d for version 2) from DICOM instance
// headers (DICOM PS3.3 patient/study/series/instance modules, PS3.5 value
// encodings and character sets).
//
// The package implements the schemas medical-image-study.xsd and
// medical-image-study.2.xsd together with the HealthVault shared types they
// use (dates.xsd date-time, base.xsd name, person, Organization and
// codable-value).
//
// The flow is:
//
//	inst, err := mis.ReadFile(path)          // or mis.Read / mis.FromDataset
//	b := mis.NewBuilder()
//	err = b.Add(inst)                        // once per instance, any order
//	xml, err := b.MIS(mis.V2)                // data-xml content, no namespace
//
// An Instance is a small struct of facts taken from one header, so a caller
// can persist it and rebuild the study later without re-reading files.
//
// # Blob names
//
// Every blob the thing refers to is named after a DICOM UID, following the
// HealthVault imaging guide (image blobs named by SOP Instance UID, previews
// by the blob name plus "_preview"):
//
//   - image blob: SOP Instance UID (0008,0018)
//   - image preview: SOP Instance UID + "_preview"
//   - series preview: Series Instance UID (0020,000E) + "_preview"
//   - study preview: Study Instance UID (0020,000D) + "_preview"
//
// Preview names are written only for instances that carry pixel data; a
// series gets a preview name when one of its images has one, and the study
// when one of its series has one. The previews layer must store a blob under
// each of these names (see Study.BlobNames).
//
// # Wire form
//
// HealthVault data-xml content carries no namespace, so MIS output starts
// with a bare <medical-image-study>. Namespaced rewrites the root into the
// schema's target namespace for validation with the official XSD.
package mis
