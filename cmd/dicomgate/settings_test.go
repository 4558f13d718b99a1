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

// TestPlatformTargetWithSavedSettings: the platform connection saved in
// the admin UI replaces the flags' platform, credentials and patient links.
func TestPlatformTargetWithSavedSettings(t *testing.T) {
	flags := platformTarget{url: "http://127.0.0.1:8080", publicURL: "https://bundled.example.org", appDir: "data/platform/gateway-app"}
	tests := []struct {
		name  string
		saved *admin.PlatformSettings
		want  platformTarget
	}{
		{"nothing saved", nil, flags},
		{"another platform, patients sent to it",
			&admin.PlatformSettings{URL: "https://hv.example.org", CredentialsDir: "/etc/dicomgate/app"},
			platformTarget{url: "https://hv.example.org", publicURL: "https://hv.example.org", appDir: "/etc/dicomgate/app"}},
		{"another platform with its own public URL",
			&admin.PlatformSettings{URL: "https://api.hv.example.org", CredentialsDir: "/etc/dicomgate/app", PublicURL: "https://hv.example.org"},
			platformTarget{url: "https://api.hv.example.org", publicURL: "https://hv.example.org", appDir: "/etc/dicomgate/app"}},
		{"only the public URL", &admin.PlatformSettings{PublicURL: "https://pickup.example.org"},
			platformTarget{url: flags.url, publicURL: "https://pickup.example.org", appDir: flags.appDir}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := flags.with(tc.saved); got != tc.want {
				t.Fatalf("with(%+v) = %+v, want %+v", tc.saved, got, tc.want)
			}
		})
	}
}
