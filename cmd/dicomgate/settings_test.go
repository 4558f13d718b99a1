package main

import (
	"context"
	"encoding/json"
	"testing"

	"dicomgate/gateway/admin"
)

// TestServeAppliesSavedSettings: the DICOM settings saved in the admin UI
// override the flags when serve starts — the listener answers to the
// saved AE title, not the flag's.
func TestServeAppliesSavedSettings(t *testing.T) {
	data := t.TempDir()
	st, err := openGatewayStore(context.Background(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(admin.DICOMSettings{AETitle: "SAVEDAET"})
	if err := st.PutSetting(context.Background(), admin.SettingDICOM, b); err != nil {
		t.Fatal(err)
	}
	st.Close()
	addr, _ := startServeIn(t, data, "--ae-title", "FLAGAET")
	if out, err := run(t, "echo", "--aec", "SAVEDAET", addr); err != nil {
		t.Fatalf("echo to the saved AE title: %v\n%s", err, out)
	}
	if out, err := run(t, "echo", "--aec", "FLAGAET", addr); err == nil {
		t.Fatalf("echo to the flag's AE title was accepted:\n%s", out)
	}
}
