package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func seedFiles(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.pdu")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds in testdata: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// TestDecodeCapturedPDUs decodes PDUs captured from DCMTK echoscu/storescu
// talking to dicomgate, and checks that re-encoding is byte-identical.
func TestDecodeCapturedPDUs(t *testing.T) {
	for name, b := range seedFiles(t) {
		t.Run(name, func(t *testing.T) {
			p, err := NewReader(bytes.NewReader(b)).Read()
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			again, err := Encode(p)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(again, b) {
				// DCMTK pads nothing and orders sub-items as we do, so the
				// round trip is exact except for reserved fields.
				p2, err := Decode(Type(again[0]), again[6:])
				if err != nil || !reflect.DeepEqual(p, p2) {
					t.Fatalf("re-encoded PDU differs and does not decode equal: %v", err)
				}
			}
		})
	}
}

func TestCapturedRequestContents(t *testing.T) {
	b := seedFiles(t)["storescu-associate-rq-identity.pdu"]
	p, err := NewReader(bytes.NewReader(b)).Read()
	if err != nil {
		t.Fatal(err)
	}
	rq := p.(*AssociateRQ)
	if rq.CallingAETitle != "STORESCU" || rq.CalledAETitle != "DICOMGATE" || rq.ApplicationContext != ApplicationContextName {
		t.Errorf("AE titles/app context: %+v", rq)
	}
	if len(rq.PresentationContexts) < 100 {
		t.Errorf("got %d presentation contexts, storescu -xs proposes more than 100", len(rq.PresentationContexts))
	}
	id := rq.UserInformation.UserIdentity
	if id == nil || id.IdentityType != 2 || string(id.PrimaryField) != "alice" || string(id.SecondaryField) != "secret" {
		t.Errorf("user identity: %+v", id)
	}
	if rq.UserInformation.MaxLength != 16384 || rq.UserInformation.ImplementationClassUID == "" {
		t.Errorf("user information: %+v", rq.UserInformation)
	}
}

func TestRoundTrip(t *testing.T) {
	ui := UserInformation{
		MaxLength: 4096, ImplementationClassUID: "1.2.3.4", ImplementationVersionName: "TEST_1",
		AsyncOperations:      &AsyncOperationsWindow{MaxOperationsInvoked: 3, MaxOperationsPerformed: 2},
		RoleSelections:       []RoleSelection{{SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SCURole: true, SCPRole: false}},
		ExtendedNegotiations: []ExtendedNegotiation{{SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", ApplicationInfo: []byte{2, 0, 1, 0, 0, 0}}},
		CommonExtendedNegotiations: []CommonExtendedNegotiation{{SOPClassUID: "1.2.840.10008.5.1.4.1.1.2.1", ServiceClassUID: "1.2.840.10008.4.2",
			RelatedGeneralSOPClasses: []string{"1.2.840.10008.5.1.4.1.1.2"}}},
		UserIdentity: &UserIdentity{IdentityType: 2, PositiveResponseRequested: true, PrimaryField: []byte("u"), SecondaryField: []byte("p")},
	}
	acUI := ui
	acUI.UserIdentity = nil
	acUI.UserIdentityResponse = &UserIdentityResponse{ServerResponse: []byte("ok")}
	cases := []PDU{
		&AssociateRQ{ProtocolVersion: 1, CalledAETitle: "B", CallingAETitle: "A", ApplicationContext: ApplicationContextName,
			PresentationContexts: []PresentationContextRQ{{ID: 1, AbstractSyntax: "1.2.840.10008.1.1", TransferSyntaxes: []string{"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}}},
			UserInformation:      ui},
		&AssociateAC{ProtocolVersion: 1, CalledAETitle: "B", CallingAETitle: "A", ApplicationContext: ApplicationContextName,
			PresentationContexts: []PresentationContextAC{{ID: 1, Result: ContextAcceptance, TransferSyntax: "1.2.840.10008.1.2"}, {ID: 3, Result: ContextAbstractSyntaxNotSupported}},
			UserInformation:      acUI},
		&AssociateRJ{Result: RejectedTransient, Source: SourceServiceProviderPresentation, Reason: ReasonLocalLimitExceeded},
		&PDataTF{PDVs: []PDV{{ContextID: 1, Command: true, Last: true, Data: []byte{1, 2, 3}}, {ContextID: 3, Data: []byte{}}}},
		&ReleaseRQ{}, &ReleaseRP{},
		&Abort{Source: AbortServiceProvider, Reason: AbortUnexpectedPDU},
	}
	for _, p := range cases {
		t.Run(p.Type().String(), func(t *testing.T) {
			b, err := Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := NewReader(bytes.NewReader(b)).Read()
			if err != nil {
				t.Fatal(err)
			}
			if ac, ok := got.(*AssociateAC); ok {
				// a rejected context's transfer syntax is not significant
				ac.PresentationContexts[1].TransferSyntax = ""
			}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, p)
			}
		})
	}
}

func TestReaderRejects(t *testing.T) {
	hdr := func(typ byte, n uint32) []byte {
		b := []byte{typ, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[2:], n)
		return b
	}
	rq := seedFiles(t)["echoscu-associate-rq.pdu"]
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown type", append(hdr(0x09, 4), 0, 0, 0, 0), ErrUnknownType},
		{"gigabyte length", hdr(0x04, 0xFFFFFFF0), ErrTooLong},
		{"association over limit", hdr(0x01, DefaultMaxAssociatePDU+1), ErrTooLong},
		{"truncated body", append(hdr(0x04, 100), 1, 2, 3), io.ErrUnexpectedEOF},
		{"truncated header", []byte{0x04, 0, 0}, io.ErrUnexpectedEOF},
		{"empty", nil, io.EOF},
		{"pdv longer than pdu", append(hdr(0x04, 6), 0, 0, 0, 9, 1, 3), ErrMalformed},
		{"pdv even context", append(hdr(0x04, 6), 0, 0, 0, 2, 2, 3), ErrMalformed},
		{"abort wrong length", append(hdr(0x07, 3), 0, 0, 0), ErrMalformed},
		{"rq truncated fixed part", append(hdr(0x01, 10), make([]byte, 10)...), ErrMalformed},
		{"rq item overruns", func() []byte {
			b := append([]byte(nil), rq...)
			binary.BigEndian.PutUint16(b[6+68+2:], 0xFFFF)
			return b
		}(), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(c.in)).Read()
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzReadPDU feeds arbitrary bytes to the PDU reader: it must return a PDU
// or an error, never panic, and never allocate beyond its limits.
func FuzzReadPDU(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := NewReader(bytes.NewReader(b))
		rd.MaxPDataLength, rd.MaxAssociateLength = 1<<16, 1<<16
		for range 4 {
			p, err := rd.Read()
			if err != nil {
				return
			}
			if _, err := Encode(p); err != nil && p.Type() != TypeAssociateRQ && p.Type() != TypeAssociateAC {
				t.Fatalf("decoded %s does not encode: %v", p.Type(), err)
			}
		}
	})
}

// FuzzParseUserInformation fuzzes the user information item parser.
func FuzzParseUserInformation(f *testing.F) {
	for _, b := range seedFiles(f) {
		if b[0] == 1 || b[0] == 2 {
			if p, err := Decode(Type(b[0]), b[6:]); err == nil {
				var ui UserInformation
				switch v := p.(type) {
				case *AssociateRQ:
					ui = v.UserInformation
				case *AssociateAC:
					ui = v.UserInformation
				}
				if enc, err := EncodeUserInformation(&ui); err == nil {
					f.Add(enc)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ui, err := ParseUserInformation(b)
		if err != nil {
			return
		}
		enc, err := EncodeUserInformation(&ui)
		if err != nil {
			return
		}
		if _, err := ParseUserInformation(enc); err != nil {
			t.Fatalf("re-encoded user information does not parse: %v", err)
		}
	})
}

// FuzzParsePresentationContext fuzzes both presentation context parsers.
func FuzzParsePresentationContext(f *testing.F) {
	for _, b := range seedFiles(f) {
		if b[0] != 1 && b[0] != 2 || len(b) < 6+68 {
			continue
		}
		items, err := splitItems(b[6+68:], 1024)
		if err != nil {
			continue
		}
		for _, it := range items {
			if it.typ == ItemPresentationContextRQ || it.typ == ItemPresentationContextAC {
				f.Add(it.data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParsePresentationContextRQ(b)
		_, _ = ParsePresentationContextAC(b)
	})
}
