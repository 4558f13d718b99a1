package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"dicomgate/dimse/dicomtest"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/keyfile"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/platform/appcert"
)

func adminBrowser(t *testing.T, opts ...envOption) (*env, *browser) {
	e := newEnv(t, opts...)
	e.user("root", store.RoleAdmin)
	b := e.signIn("root")
	b.get("/settings")
	return e, b
}

func TestSettingsDICOM(t *testing.T) {
	e, b := adminBrowser(t)
	for _, tt := range []struct {
		form  url.Values
		field string
		msg   string
	}{
		{url.Values{"ae_title": {"THIS_AE_IS_TOO_LONG"}}, "err-ae_title", "At most 16 characters."},
		{url.Values{"ae_title": {"  "}}, "err-ae_title", "Enter an AE title."},
		{url.Values{"ae_title": {`BAD\AE`}}, "err-ae_title", "without backslash"},
		{url.Values{"ae_title": {"DICOMGATE"}, "allowed_callers": {"CT1\nWAY_TOO_LONG_AE_TITLE@10.0.0.1"}}, "err-allowed_callers", "Line 2"},
	} {
		r := b.post("/settings/dicom", tt.form)
		if r.code != http.StatusUnprocessableEntity {
			t.Fatalf("%v: %d", tt.form, r.code)
		}
		mustContain(t, r, `id="`+tt.field+`"`, tt.msg)
	}
	if _, err := e.db.Setting(context.Background(), admin.SettingDICOM); err == nil {
		t.Fatal("an invalid form was saved")
	}
	r := b.post("/settings/dicom", url.Values{"ae_title": {"HOSPGATE"}, "allowed_callers": {"CT1@10.0.0.5\r\n\r\nMR2\n"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.code, r.body)
	}
	all, err := admin.LoadSettings(context.Background(), e.db)
	if err != nil || all.DICOM == nil {
		t.Fatal(all, err)
	}
	want := admin.DICOMSettings{AETitle: "HOSPGATE", AllowedCallers: []admin.AllowedCaller{{AETitle: "CT1", Host: "10.0.0.5"}, {AETitle: "MR2"}}}
	if got, _ := json.Marshal(all.DICOM); !bytes.Equal(got, mustJSON(t, want)) {
		t.Fatalf("stored %s, want %s", got, mustJSON(t, want))
	}
	mustContain(t, b.get("/settings"), `value="HOSPGATE"`, "CT1@10.0.0.5\nMR2", "DICOM settings saved.")
	es, _ := e.db.Audit(context.Background(), store.AuditFilter{Limit: 1})
	if es[0].Action != "settings-saved" || !strings.Contains(es[0].Detail, admin.SettingDICOM) || es[0].Username != "root" {
		t.Fatalf("audit = %+v", es[0])
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ruleForm(rows [][8]string, def string) url.Values {
	f := url.Values{"default_action": {def}}
	names := []string{"rule_name", "rule_calling_ae", "rule_patient_id", "rule_issuer", "rule_modality", "rule_description", "rule_referring", "rule_action"}
	for _, row := range rows {
		for i, n := range names {
			f.Add(n, row[i])
		}
	}
	return f
}

func TestSettingsRouting(t *testing.T) {
	ct := dicomtest.PydicomFile(t, "CT_small.dcm")
	e, b := adminBrowser(t)
	e.ingest(ct)
	st := e.studyOf("1CT1")
	if d := e.gw.Decide(st); d.Action != route.ActionHold {
		t.Fatalf("initial decision %v", d)
	}
	blank := [8]string{"", "", "", "", "", "", "", "record"}
	for _, tt := range []struct {
		form  url.Values
		field string
		msg   string
	}{
		{ruleForm([][8]string{{"ct", "", "", "", "CT", "([", "", "record"}, blank}, "hold"), "err-rule-0", "study description"},
		{ruleForm([][8]string{{"ok", "", "", "", "", "", "", "record"}, {"", "CT1", "", "", "", "", "", "record"}}, "hold"), "err-rule-1", "Give the rule a name."},
		{ruleForm([][8]string{{"x", "", "", "", "", "", "", "fax"}}, "hold"), "err-rule-0", "Choose record, dopu or hold."},
		{ruleForm(nil, "burn"), "err-default_action", "Choose record, dopu or hold."},
	} {
		r := b.post("/settings/routing", tt.form)
		if r.code != http.StatusUnprocessableEntity {
			t.Fatalf("%v: %d", tt.form, r.code)
		}
		mustContain(t, r, `id="`+tt.field+`"`, tt.msg)
	}
	// An incomplete table (hostile or broken form) is refused whole.
	f := ruleForm([][8]string{{"a", "", "", "", "", "", "", "record"}}, "hold")
	f.Del("rule_modality")
	if r := b.post("/settings/routing", f); r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="err-routing"`) {
		t.Fatalf("incomplete table: %d", r.code)
	}

	edited := ruleForm([][8]string{{"CT from CT1 to the record", "ct1", "", "", "ct", "", "", "record"}, blank, blank}, "hold")
	// Dry run: needs a study; routes with the edited rules, saves nothing.
	if r := b.post("/settings/routing/dry-run", edited); r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="err-dry_run_study"`) {
		t.Fatalf("dry run without study: %d", r.code)
	}
	edited.Set("dry_run_study", st.StudyUID)
	r := b.post("/settings/routing/dry-run", edited)
	if r.code != http.StatusOK {
		t.Fatalf("dry run: %d", r.code)
	}
	mustContain(t, r, `id="dry-run-result"`, "record (rule 1 &#34;CT from CT1 to the record&#34;)", "hold (default: no rule matched)")
	if !e.audited("routing-dry-run", st.StudyUID) {
		t.Fatal("dry run not audited")
	}
	if _, err := e.db.Setting(context.Background(), admin.SettingRouting); err == nil {
		t.Fatal("the dry run saved the rules")
	}
	if d := e.gw.Decide(st); d.Action != route.ActionHold {
		t.Fatalf("the dry run changed the live rules: %v", d)
	}

	edited.Del("dry_run_study")
	if r := b.post("/settings/routing", edited); r.code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.code, r.body)
	}
	if d := e.gw.Decide(st); d.Action != route.ActionRecord || d.RuleName != "CT from CT1 to the record" {
		t.Fatalf("rules not applied live: %v", d)
	}
	all, _ := admin.LoadSettings(context.Background(), e.db)
	if all.Routing == nil || len(all.Routing.Rules) != 1 || all.Routing.Default != route.ActionHold || all.Routing.Rules[0].Modality != "ct" {
		t.Fatalf("stored routing = %+v", all.Routing)
	}
	mustContain(t, b.get("/settings"), `value="CT from CT1 to the record"`)
}

func TestSettingsSMTP(t *testing.T) {
	key, err := keyfile.LoadOrCreate(filepath.Join(t.TempDir(), "gateway.key"))
	if err != nil {
		t.Fatal(err)
	}
	e, b := adminBrowser(t, func(_ *env, _ *gatewayConfig, c *admin.Config) { c.Secrets = key })
	srv := startSMTP(t)
	host, port, _ := net.SplitHostPort(srv.addr)

	r := b.post("/settings/smtp/test", url.Values{"test_to": {"ward@hospital.example"}})
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("test before save: %d", r.code)
	}
	mustContain(t, r, `id="err-test_to"`, "Save the SMTP settings first.")

	r = b.post("/settings/smtp", url.Values{"host": {""}, "port": {"99999"}, "security": {"rot13"}, "auth": {"magic"}, "from": {"not an address"}})
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid SMTP form: %d", r.code)
	}
	mustContain(t, r, `id="err-host"`, `id="err-port"`, `id="err-security"`, `id="err-auth"`, `id="err-from"`)

	good := url.Values{"host": {host}, "port": {port}, "security": {"none"}, "from": {"Radiology <imaging@hospital.example>"},
		"institution": {"St Example Radiology"}, "password": {"smtp-s3cret"}}
	if r := b.post("/settings/smtp", good); r.code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.code, r.body)
	}
	raw, _ := e.db.Setting(context.Background(), admin.SettingSMTP)
	if bytes.Contains(raw, []byte("smtp-s3cret")) {
		t.Fatalf("SMTP password stored in plain text: %s", raw)
	}
	all, _ := admin.LoadSettings(context.Background(), e.db)
	cfg, err := all.SMTP.SMTPConfig(key)
	if err != nil || cfg.Password != "smtp-s3cret" || cfg.Host != host || cfg.Security != mail.SecurityNone {
		t.Fatalf("SMTPConfig = %+v, %v", cfg, err)
	}
	// Saving again without typing the password keeps it.
	good.Del("password")
	b.get("/settings")
	b.post("/settings/smtp", good)
	all, _ = admin.LoadSettings(context.Background(), e.db)
	if cfg, _ := all.SMTP.SMTPConfig(key); cfg.Password != "smtp-s3cret" {
		t.Fatal("an empty password field dropped the stored password")
	}
	mustContain(t, b.get("/settings"), "stored (sealed)")

	if r := b.post("/settings/smtp/test", url.Values{"test_to": {"not-an-address"}}); r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="err-test_to"`) {
		t.Fatalf("test mail to a bad address: %d", r.code)
	}
	r = b.post("/settings/smtp/test", url.Values{"test_to": {"ward@hospital.example"}})
	if r.code != http.StatusOK {
		t.Fatalf("test mail: %d %s", r.code, r.body)
	}
	mustContain(t, r, `id="result"`, "was accepted by")
	msgs := srv.received()
	if len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0] != "ward@hospital.example" || !bytes.Contains(msgs[0].data, []byte("St Example Radiology")) {
		t.Fatalf("SMTP server received %+v", msgs)
	}
	if !e.audited("smtp-test", "") {
		t.Fatal("test mail not audited")
	}

	// A server that is down: the failure is shown, not hidden.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, deadPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	good.Set("port", deadPort)
	b.post("/settings/smtp", good)
	b.get("/settings")
	r = b.post("/settings/smtp/test", url.Values{"test_to": {"ward@hospital.example"}})
	if r.code != http.StatusBadGateway {
		t.Fatalf("test mail to a dead server: %d", r.code)
	}
	mustContain(t, r, "was not sent")
}

func TestSettingsSMTPPasswordNeedsKey(t *testing.T) {
	_, b := adminBrowser(t)
	r := b.post("/settings/smtp", url.Values{"host": {"smtp.example"}, "security": {"starttls"}, "from": {"a@b.example"}, "password": {"x"}})
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("password without key: %d", r.code)
	}
	mustContain(t, r, `id="err-smtp-password"`, "no key to seal passwords")
}

func TestSettingsPlatform(t *testing.T) {
	p := startPlatform(t)
	e, b := adminBrowser(t)

	if r := b.post("/settings/platform/test", nil); r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Save the platform connection first.") {
		t.Fatalf("test before save: %d", r.code)
	}
	r := b.post("/settings/platform", url.Values{"url": {"ftp://x"}, "credentials_dir": {t.TempDir()}, "public_url": {"nope"}})
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid platform form: %d", r.code)
	}
	mustContain(t, r, `id="err-url"`, `id="err-credentials_dir"`, "No usable credentials there", `id="err-public_url"`)

	if r := b.post("/settings/platform", url.Values{"url": {p.url}, "credentials_dir": {p.credsDir}, "public_url": {"https://health.example"}}); r.code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.code, r.body)
	}
	b.get("/settings")
	r = b.post("/settings/platform/test", nil)
	if r.code != http.StatusOK {
		t.Fatalf("test connection: %d %s", r.code, r.body)
	}
	mustContain(t, r, "Connected to "+p.url)

	// Credentials of an application the platform does not know.
	other := t.TempDir()
	k, c, err := appcert.Generate("stranger", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := appcert.Save(other, &appcert.Credentials{AppID: "00000000-0000-0000-0000-00000000beef", Key: k, Cert: c}); err != nil {
		t.Fatal(err)
	}
	b.post("/settings/platform", url.Values{"url": {p.url}, "credentials_dir": {other}})
	b.get("/settings")
	r = b.post("/settings/platform/test", nil)
	if r.code != http.StatusBadGateway {
		t.Fatalf("test with unknown application: %d", r.code)
	}
	mustContain(t, r, "The platform connection failed")
	if n := e.auditCount("platform-test"); n != 2 {
		t.Fatalf("%d platform-test audit rows", n)
	}
}

func TestSettingsPreviews(t *testing.T) {
	e, b := adminBrowser(t)
	mustContain(t, b.get("/settings"), `name="preview_size" value="1024"`)
	for _, tt := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"preview_size": {"big"}, "thumbnail_size": {"64"}, "quality": {"80"}}, "err-preview_size"},
		{url.Values{"preview_size": {"512"}, "thumbnail_size": {"5000"}, "quality": {"80"}}, "err-thumbnail_size"},
		{url.Values{"preview_size": {"512"}, "thumbnail_size": {"64"}, "quality": {"0"}}, "err-quality"},
		{url.Values{"preview_size": {"256"}, "thumbnail_size": {"512"}, "quality": {"80"}}, "err-thumbnail_size"},
	} {
		r := b.post("/settings/previews", tt.form)
		if r.code != http.StatusUnprocessableEntity {
			t.Fatalf("%v: %d", tt.form, r.code)
		}
		mustContain(t, r, `id="`+tt.field+`"`)
	}
	if r := b.post("/settings/previews", url.Values{"preview_size": {"768"}, "thumbnail_size": {"96"}, "quality": {"85"}}); r.code != http.StatusSeeOther {
		t.Fatalf("save: %d", r.code)
	}
	all, _ := admin.LoadSettings(context.Background(), e.db)
	if all.Previews == nil || *all.Previews != (admin.PreviewSettings{PreviewSize: 768, ThumbnailSize: 96, Quality: 85}) {
		t.Fatalf("stored previews = %+v", all.Previews)
	}
	mustContain(t, b.get("/settings"), `name="preview_size" value="`+strconv.Itoa(768)+`"`)
}
