package mis

import "strings"

// modalities maps DICOM Modality (0008,0060) Defined Terms (PS3.3
// C.7.3.1.1.1, including retired terms still found in archives) to display
// text.
var modalities = map[string]string{
	"ANN":        "Annotation",
	"AR":         "Autorefraction",
	"ASMT":       "Content Assessment Results",
	"AU":         "Audio",
	"BDUS":       "Bone Densitometry (ultrasound)",
	"BI":         "Biomagnetic imaging",
	"BMD":        "Bone Densitometry (X-Ray)",
	"CFM":        "Confocal Microscopy",
	"CR":         "Computed Radiography",
	"CT":         "Computed Tomography",
	"CTPROTOCOL": "CT Protocol (Performed)",
	"DG":         "Diaphanography",
	"DMS":        "Dermoscopy",
	"DOC":        "Document",
	"DX":         "Digital Radiography",
	"ECG":        "Electrocardiography",
	"EEG":        "Electroencephalography",
	"EMG":        "Electromyography",
	"EOG":        "Electrooculography",
	"EPS":        "Cardiac Electrophysiology",
	"ES":         "Endoscopy",
	"FID":        "Fiducials",
	"GM":         "General Microscopy",
	"HC":         "Hard Copy",
	"HD":         "Hemodynamic Waveform",
	"IO":         "Intra-Oral Radiography",
	"IOL":        "Intraocular Lens Data",
	"IVOCT":      "Intravascular Optical Coherence Tomography",
	"IVUS":       "Intravascular Ultrasound",
	"KER":        "Keratometry",
	"KO":         "Key Object Selection",
	"LEN":        "Lensometry",
	"LS":         "Laser Surface Scan",
	"M3D":        "Model for 3D Manufacturing",
	"MG":         "Mammography",
	"MR":         "Magnetic Resonance",
	"NM":         "Nuclear Medicine",
	"OAM":        "Ophthalmic Axial Measurements",
	"OCT":        "Optical Coherence Tomography (non-Ophthalmic)",
	"OP":         "Ophthalmic Photography",
	"OPM":        "Ophthalmic Mapping",
	"OPT":        "Ophthalmic Tomography",
	"OPTBSV":     "Ophthalmic Tomography B-scan Volume Analysis",
	"OPTENF":     "Ophthalmic Tomography En Face",
	"OPV":        "Ophthalmic Visual Field",
	"OSS":        "Optical Surface Scan",
	"OT":         "Other",
	"PA":         "Photoacoustic",
	"PLAN":       "Plan",
	"POS":        "Position Sensor",
	"PR":         "Presentation State",
	"PT":         "Positron Emission Tomography (PET)",
	"PX":         "Panoramic X-Ray",
	"REG":        "Registration",
	"RESP":       "Respiratory Waveform",
	"RF":         "Radio Fluoroscopy",
	"RG":         "Radiographic Imaging (conventional film/screen)",
	"RTDOSE":     "Radiotherapy Dose",
	"RTIMAGE":    "Radiotherapy Image",
	"RTINTENT":   "Radiotherapy Intent",
	"RTPLAN":     "Radiotherapy Plan",
	"RTRAD":      "RT Radiation",
	"RTRECORD":   "RT Treatment Record",
	"RTSEGANN":   "Radiotherapy Segment Annotation",
	"RTSTRUCT":   "Radiotherapy Structure Set",
	"RWV":        "Real World Value Map",
	"SEG":        "Segmentation",
	"SM":         "Slide Microscopy",
	"SMR":        "Stereometric Relationship",
	"SR":         "Structured Report Document",
	"SRF":        "Subjective Refraction",
	"STAIN":      "Automated Slide Stainer",
	"TEXTUREMAP": "Texture Map",
	"TG":         "Thermography",
	"US":         "Ultrasound",
	"VA":         "Visual Acuity",
	"XA":         "X-Ray Angiography",
	"XAPROTOCOL": "XA Protocol (Performed)",
	"XC":         "External-camera Photography",
	// Retired terms.
	"CD":  "Color Flow Doppler",
	"DD":  "Duplex Doppler",
	"DF":  "Digital Fluoroscopy",
	"DM":  "Digital Microscopy",
	"DS":  "Digital Subtraction Angiography",
	"EC":  "Echocardiography",
	"FA":  "Fluorescein Angiography",
	"FS":  "Fundoscopy",
	"LP":  "Laparoscopy",
	"MA":  "Magnetic Resonance Angiography",
	"MS":  "Magnetic Resonance Spectroscopy",
	"OPR": "Ophthalmic Refraction",
	"ST":  "Single-Photon Emission Computed Tomography (SPECT)",
	"VF":  "Videofluorography",
}

// ModalityDisplay returns the display text of a DICOM modality code and
// whether the code is a Defined Term.
func ModalityDisplay(code string) (string, bool) {
	s, ok := modalities[strings.ToUpper(strings.TrimSpace(code))]
	return s, ok
}

// ModalityValue converts Modality (0008,0060) to the MIS codable value: a
// Defined Term gets its display text and a code in the dicom.modality
// vocabulary; anything else is kept as text only, as codable-value asks for
// values outside a vocabulary. It returns nil for an empty value.
func ModalityValue(code string) *CodableValue {
	code = cleanText(firstValue(code))
	if code == "" {
		return nil
	}
	up := strings.ToUpper(code)
	if text, ok := modalities[up]; ok {
		return &CodableValue{Text: text, Code: []CodedValue{{Value: up, Type: ModalityVocabulary}}}
	}
	return &CodableValue{Text: code}
}
