package dimse

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"dicomgate/dimse/dataset"
	"dicomgate/dimse/spool"
)

func commandSeeds(t testing.TB) map[string][]byte {
	files, _ := filepath.Glob("testdata/*.cmd")
	if len(files) == 0 {
		t.Fatal("no command seeds")
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

func TestDecodeCapturedCommands(t *testing.T) {
	want := map[string]Command{
		"storescu-cstore-rq.cmd": {AffectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", CommandField: CommandCStoreRQ, MessageID: 1,
			HasDataSet: true, AffectedSOPInstanceUID: "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"},
		"echoscu-cecho-rq.cmd":     {AffectedSOPClassUID: VerificationSOPClass, CommandField: CommandCEchoRQ, MessageID: 1},
		"dicomgate-cecho-rsp.cmd":  {AffectedSOPClassUID: VerificationSOPClass, CommandField: CommandCEchoRSP, MessageIDBeingRespondedTo: 1},
		"dicomgate-cstore-rsp.cmd": {AffectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", CommandField: CommandCStoreRSP, MessageIDBeingRespondedTo: 1, AffectedSOPInstanceUID: "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"},
	}
	for name, b := range commandSeeds(t) {
		t.Run(name, func(t *testing.T) {
			c, err := DecodeCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if w := want[name]; *c != w {
				t.Fatalf("got %+v\nwant %+v", *c, want[name])
			}
			// Our encoding of what we decoded decodes to the same command.
			c2, err := DecodeCommand(c.Encode())
			if err != nil || *c2 != *c {
				t.Fatalf("re-encoded: %+v %v", c2, err)
			}
		})
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	good := (&Command{CommandField: CommandCEchoRQ, MessageID: 7, AffectedSOPClassUID: VerificationSOPClass}).Encode()
	cases := map[string][]byte{
		"truncated":         good[:len(good)-3],
		"length overflow":   append(append([]byte(nil), good[:4]...), 0xFF, 0xFF, 0xFF, 0x7F),
		"other group":       append(append([]byte(nil), good...), 0x08, 0, 0x60, 0, 0, 0, 0, 0),
		"wrong size US":     {0, 0, 0, 1, 1, 0, 0, 0, 0x30},
		"no command field":  good[:12],
		"oversized command": make([]byte, maxCommandLength+2),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeCommand(b); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	cases := []struct {
		err  error
		want Status
	}{
		{nil, StatusSuccess},
		{&StatusError{Status: StatusCoercionOfElements, Comment: "coerced"}, StatusCoercionOfElements},
		{fmt.Errorf("spool: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), StatusOutOfResources},
		{fmt.Errorf("x: %w", spool.ErrFull), StatusOutOfResources},
		{fmt.Errorf("x: %w", spool.ErrMismatch), StatusDataSetMismatch},
		{fmt.Errorf("x: %w", dataset.ErrMalformed), StatusCannotUnderstand},
		{fmt.Errorf("x: %w", spool.ErrInvalid), StatusCannotUnderstand},
		{errors.New("boom"), StatusProcessingFailure},
	}
	for _, c := range cases {
		got, comment := StatusOf(c.err)
		if got != c.want || len(comment) > 64 || c.err != nil && comment == "" {
			t.Errorf("StatusOf(%v) = %s %q, want %s", c.err, got, comment, c.want)
		}
	}
	if !errors.Is(fmt.Errorf("w: %w", &StatusError{Status: StatusOutOfResources, Comment: "disk"}), ErrOutOfResources) {
		t.Error("errors.Is does not match StatusErrors by status")
	}
}

func TestIsStorageSOPClass(t *testing.T) {
	for uid, want := range map[string]bool{
		"1.2.840.10008.5.1.4.1.1.2":     true,  // CT Image Storage
		"1.2.840.10008.5.1.4.1.1.66.4":  true,  // Segmentation Storage
		"1.2.840.10008.5.1.4.1.1.481.8": true,  // RT Ion Plan
		"1.2.840.10008.5.1.4.34.7":      true,  // RT Beams Delivery Instruction Storage
		"1.2.840.10008.5.1.4.43.1":      true,  // Generic Implant Template Storage
		"1.2.840.10008.5.1.4.1.1.9.1.1": true,  // 12-lead ECG
		"1.2.840.10008.1.20.1":          false, // Storage Commitment Push Model
		"1.2.840.10008.1.3.10":          false, // Media Storage Directory Storage
		"1.2.840.10008.5.1.4.1.2.1.1":   false, // Patient Root Q/R FIND
		"1.2.840.10008.1.1":             false, // Verification
	} {
		if got := IsStorageSOPClass(uid); got != want {
			t.Errorf("IsStorageSOPClass(%s) = %v", uid, got)
		}
	}
}

// FuzzDecodeCommand fuzzes the command set decoder, seeded with command
// sets captured from DCMTK and dicomgate.
func FuzzDecodeCommand(f *testing.F) {
	for _, b := range commandSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if _, err := DecodeCommand(c.Encode()); err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
	})
}
