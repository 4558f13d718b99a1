package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"dicomgate/dimse"
	"dicomgate/gateway"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/platform/appcert"
	"dicomgate/platform/client"
	"dicomgate/platform/wire"
)

// The keys under which the settings page stores its sections in the
// store's settings table, each as one JSON document. serve reads them at
// start; values there override the command-line defaults.
const (
	// SettingDICOM holds DICOMSettings.
	SettingDICOM = "settings.dicom"
	// SettingRouting holds RoutingSettings.
	SettingRouting = "settings.routing"
	// SettingSMTP holds SMTPSettings.
	SettingSMTP = "settings.smtp"
	// SettingPlatform holds PlatformSettings.
	SettingPlatform = "settings.platform"
	// SettingPreviews holds PreviewSettings.
	SettingPreviews = "settings.previews"
)

// DICOMSettings configures the DICOM listener.
type DICOMSettings struct {
	// AETitle is the called AE title the listener answers to.
	AETitle string `json:"ae_title"`
	// AllowedCallers admits calling AE titles, each optionally only from
	// one host; empty admits any caller.
	AllowedCallers []AllowedCaller `json:"allowed_callers"`
}

// AllowedCaller is one admitted calling AE title.
type AllowedCaller struct {
	AETitle string `json:"ae_title"`
	Host    string `json:"host,omitempty"` // IP address or host name; empty: any
}

// String is the caller in dimse.ParseCallerRule's form, AE or AE@host.
func (a AllowedCaller) String() string {
	if a.Host == "" {
		return a.AETitle
	}
	return a.AETitle + "@" + a.Host
}

// RoutingSettings are the routing rules and the action when none matches.
type RoutingSettings struct {
	Rules   []route.Rule `json:"rules"`
	Default route.Action `json:"default"`
}

// SMTPSettings say how mail leaves. The password is sealed with the
// gateway's key (keyfile), never stored in plain text.
type SMTPSettings struct {
	Host           string             `json:"host"`
	Port           int                `json:"port,omitempty"`
	Security       mail.Security      `json:"security"`
	Username       string             `json:"username,omitempty"`
	PasswordSealed []byte             `json:"password_sealed,omitempty"`
	Auth           mail.AuthMechanism `json:"auth,omitempty"`
	From           string             `json:"from"`
	HELO           string             `json:"helo,omitempty"`
	// Institution signs the mails ("Radiology, St Example Hospital").
	Institution string `json:"institution,omitempty"`
}

// SMTPConfig returns the mail transport's configuration, opening the
// sealed password with secrets.
func (s SMTPSettings) SMTPConfig(secrets Sealer) (mail.SMTPConfig, error) {
	cfg := mail.SMTPConfig{Host: s.Host, Port: s.Port, Security: s.Security, Username: s.Username, Auth: s.Auth, From: s.From, HELO: s.HELO}
	if len(s.PasswordSealed) > 0 {
		if secrets == nil {
			return cfg, errors.New("admin: SMTP password is sealed but no key is configured")
		}
		p, err := secrets.Open(s.PasswordSealed)
		if err != nil {
			return cfg, fmt.Errorf("admin: SMTP password: %w", err)
		}
		cfg.Password = string(p)
	}
	return cfg, nil
}

// PlatformSettings say how the gateway reaches the HealthVault platform.
type PlatformSettings struct {
	// URL is the platform's base URL (scheme://host[:port]).
	URL string `json:"url"`
	// CredentialsDir holds the application's key and certificate
	// (appcert.Load).
	CredentialsDir string `json:"credentials_dir"`
	// PublicURL is where patients reach the platform's pages, the base of
	// the links in mails.
	PublicURL string `json:"public_url,omitempty"`
}

// PreviewSettings size the rendered previews.
type PreviewSettings struct {
	PreviewSize   int `json:"preview_size"`
	ThumbnailSize int `json:"thumbnail_size"`
	Quality       int `json:"quality"`
}

// Settings is every section the settings page stores; a nil section was
// never saved.
type Settings struct {
	DICOM    *DICOMSettings
	Routing  *RoutingSettings
	SMTP     *SMTPSettings
	Platform *PlatformSettings
	Previews *PreviewSettings
}

// LoadSettings reads every stored section.
func LoadSettings(ctx context.Context, st store.Store) (Settings, error) {
	var out Settings
	var (
		d  DICOMSettings
		r  RoutingSettings
		sm SMTPSettings
		p  PlatformSettings
		pv PreviewSettings
	)
	for _, sec := range []struct {
		key string
		v   any
		set func()
	}{
		{SettingDICOM, &d, func() { out.DICOM = &d }},
		{SettingRouting, &r, func() { out.Routing = &r }},
		{SettingSMTP, &sm, func() { out.SMTP = &sm }},
		{SettingPlatform, &p, func() { out.Platform = &p }},
		{SettingPreviews, &pv, func() { out.Previews = &pv }},
	} {
		ok, err := loadSetting(ctx, st, sec.key, sec.v)
		if err != nil {
			return out, err
		}
		if ok {
			sec.set()
		}
	}
	return out, nil
}

func loadSetting(ctx context.Context, st store.Store, key string, v any) (bool, error) {
	b, err := st.Setting(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("admin: setting %s: %w", key, err)
	}
	return true, nil
}

func saveSetting(ctx context.Context, st store.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.PutSetting(ctx, key, b)
}

// Limits on settings input.
const (
	maxField = 256
	maxRules = 100
	maxRegex = 1024
)

// validAETitle checks an AE title against PS3.5 6.2 (AE: at most 16
// characters of the default repertoire, no backslash or control
// characters, not only spaces).
func validAETitle(ae string) string {
	switch {
	case strings.TrimSpace(ae) == "":
		return "Enter an AE title."
	case len(ae) > 16:
		return "At most 16 characters."
	}
	for _, r := range ae {
		if r < 0x20 || r > 0x7e || r == '\\' {
			return "Use printable ASCII without backslash."
		}
	}
	return ""
}

type dicomForm struct {
	AETitle string
	Callers string // one AE or AE@host a line
}

type ruleRow struct {
	Name, CallingAE, PatientID, Issuer, Modality, Description, Referring, Action string
}

type routingForm struct {
	Rules   []ruleRow
	Default string
}

type smtpForm struct {
	Host, Port, Security, Username, Auth, From, HELO, Institution string
	HasPassword                                                   bool
	TestTo                                                        string
}

type platformForm struct {
	URL, CredentialsDir, PublicURL string
}

type previewsForm struct {
	PreviewSize, ThumbnailSize, Quality string
}

type dryRunResult struct {
	Study  store.Study
	Edited route.Decision
	Live   route.Decision
}

type settingsView struct {
	page
	DICOM    dicomForm
	Routing  routingForm
	SMTP     smtpForm
	Platform platformForm
	Previews previewsForm
	Errors   map[string]string
	Studies  []store.Study
	DryStudy string
	DryRun   *dryRunResult
	// Result is the outcome of a test mail or connection test.
	Result   string
	ResultOK bool
	Actions  []route.Action
	// DICOMStored and RoutingStored tell whether those sections were
	// saved here (else serve runs with its flags and start-up rules).
	DICOMStored, RoutingStored bool
	// saved is what the store held when the page was loaded; the forms'
	// handlers and tests read it rather than the store again.
	saved Settings
}

// settingsView builds the page from the stored settings.
func (s *Server) loadSettingsView(c *gin.Context) (*settingsView, error) {
	ctx := c.Request.Context()
	all, err := LoadSettings(ctx, s.db)
	if err != nil {
		return nil, err
	}
	v := &settingsView{page: s.pageFor(c, "settings"), Errors: map[string]string{}, saved: all,
		Actions: []route.Action{route.ActionHold, route.ActionRecord, route.ActionDOPU}}
	v.DICOMStored, v.RoutingStored = all.DICOM != nil, all.Routing != nil
	if d := all.DICOM; d != nil {
		v.DICOM.AETitle = d.AETitle
		var lines []string
		for _, a := range d.AllowedCallers {
			lines = append(lines, a.String())
		}
		v.DICOM.Callers = strings.Join(lines, "\n")
	}
	v.Routing.Default = string(route.ActionHold)
	if r := all.Routing; r != nil {
		for _, x := range r.Rules {
			v.Routing.Rules = append(v.Routing.Rules, ruleRow{Name: x.Name, CallingAE: x.CallingAE, PatientID: x.PatientID,
				Issuer: x.IssuerOfPatient, Modality: x.Modality, Description: x.StudyDescription, Referring: x.ReferringDoctor, Action: string(x.Action)})
		}
		if r.Default != "" {
			v.Routing.Default = string(r.Default)
		}
	}
	v.SMTP.Security = string(mail.SecurityStartTLS)
	if m := all.SMTP; m != nil {
		v.SMTP = smtpForm{Host: m.Host, Security: string(m.Security), Username: m.Username, Auth: string(m.Auth),
			From: m.From, HELO: m.HELO, Institution: m.Institution, HasPassword: len(m.PasswordSealed) > 0}
		if m.Port != 0 {
			v.SMTP.Port = strconv.Itoa(m.Port)
		}
	}
	if p := all.Platform; p != nil {
		v.Platform = platformForm{URL: p.URL, CredentialsDir: p.CredentialsDir, PublicURL: p.PublicURL}
	}
	o := s.cfg.Previews
	pv := PreviewSettings{PreviewSize: o.PreviewSize, ThumbnailSize: o.ThumbnailSize, Quality: o.Quality}
	if all.Previews != nil {
		pv = *all.Previews
	}
	v.Previews = previewsForm{PreviewSize: strconv.Itoa(pv.PreviewSize), ThumbnailSize: strconv.Itoa(pv.ThumbnailSize), Quality: strconv.Itoa(pv.Quality)}
	if v.Studies, err = s.db.Studies(ctx, store.StudyFilter{Limit: 50}); err != nil {
		return nil, err
	}
	return v, nil
}

// showSettings renders the page with code, two blank rows added to the
// rule table for new rules.
func (s *Server) showSettings(c *gin.Context, code int, v *settingsView) {
	v.Routing.Rules = append(v.Routing.Rules, ruleRow{Action: string(route.ActionRecord)}, ruleRow{Action: string(route.ActionRecord)})
	s.render(c, code, "settings", v)
}

func (s *Server) settings(c *gin.Context) {
	v, err := s.loadSettingsView(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.showSettings(c, http.StatusOK, v)
}

// settingsRefused shows the page again (422) with msg next to field.
func (s *Server) settingsRefused(c *gin.Context, v *settingsView, field, msg string) {
	v.Errors[field] = msg
	s.showSettings(c, http.StatusUnprocessableEntity, v)
}

// dicomSection reads the DICOM listener's section.
func (s *Server) dicomSection(c *gin.Context, v *settingsView) (sectionUpdate, error) {
	v.DICOM = dicomForm{AETitle: strings.TrimSpace(c.PostForm("ae_title")), Callers: c.PostForm("allowed_callers")}
	d := DICOMSettings{AETitle: v.DICOM.AETitle}
	if msg := validAETitle(d.AETitle); msg != "" {
		v.Errors["dicom.ae_title"] = msg
	}
	lines := strings.Split(strings.ReplaceAll(v.DICOM.Callers, "\r\n", "\n"), "\n")
	if len(lines) > maxRules {
		v.Errors["dicom.allowed_callers"] = fmt.Sprintf("At most %d callers.", maxRules)
		lines = nil
	}
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		r, err := dimse.ParseCallerRule(line)
		if err == nil {
			if msg := validAETitle(r.AETitle); msg != "" {
				err = errors.New(msg)
			}
		}
		if err != nil || len(line) > maxField {
			v.Errors["dicom.allowed_callers"] = fmt.Sprintf("Line %d (%q): write AE or AE@host.", i+1, truncateStr(line, 40))
			break
		}
		d.AllowedCallers = append(d.AllowedCallers, AllowedCaller{AETitle: r.AETitle, Host: r.Host})
	}
	return sectionUpdate{SettingDICOM, d, fmt.Sprintf("AE title %s, %d allowed callers", d.AETitle, len(d.AllowedCallers)),
		"DICOM settings saved. The listener uses them after the next restart."}, nil
}

// sectionUpdate is a section read from its valid form: the value to
// store under key, the audit log's detail and the page's flash.
type sectionUpdate struct {
	key           string
	value         any
	detail, flash string
}

// saveSettings is the handler of one section's form. It loads the page,
// lets read fill the form into it (errors go in v.Errors, next to their
// fields), then either shows the page again with the errors (422) or
// stores the section, audits it and goes back to the page.
func (s *Server) saveSettings(read func(c *gin.Context, v *settingsView) (sectionUpdate, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, err := s.loadSettingsView(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		u, err := read(c, v)
		if err != nil {
			s.fail(c, err)
			return
		}
		if len(v.Errors) > 0 {
			s.showSettings(c, http.StatusUnprocessableEntity, v)
			return
		}
		if err := saveSetting(c.Request.Context(), s.db, u.key, u.value); err != nil {
			s.fail(c, err)
			return
		}
		if err := s.audit(c, "settings-saved", "", "", u.key+": "+u.detail); err != nil {
			s.fail(c, err)
			return
		}
		s.redirect(c, "/settings", u.flash)
	}
}

// routingFromForm reads the rule rows; rows left entirely blank are
// skipped.
func routingFromForm(c *gin.Context, v *settingsView) (RoutingSettings, bool) {
	fields := []string{"rule_name", "rule_calling_ae", "rule_patient_id", "rule_issuer", "rule_modality", "rule_description", "rule_referring", "rule_action"}
	cols := make([][]string, len(fields))
	n := -1
	for i, f := range fields {
		cols[i] = c.PostFormArray(f)
		if n >= 0 && len(cols[i]) != n {
			v.Errors["routing.form"] = "The rule table arrived incomplete; reload the page."
			return RoutingSettings{}, false
		}
		n = len(cols[i])
	}
	if n > maxRules {
		v.Errors["routing.form"] = fmt.Sprintf("At most %d rules.", maxRules)
		return RoutingSettings{}, false
	}
	r := RoutingSettings{Default: route.Action(c.PostForm("default_action"))}
	v.Routing = routingForm{Default: string(r.Default)}
	ok := true
	for i := 0; i < n; i++ {
		row := ruleRow{Name: strings.TrimSpace(cols[0][i]), CallingAE: strings.TrimSpace(cols[1][i]), PatientID: strings.TrimSpace(cols[2][i]),
			Issuer: strings.TrimSpace(cols[3][i]), Modality: strings.TrimSpace(cols[4][i]), Description: strings.TrimSpace(cols[5][i]),
			Referring: strings.TrimSpace(cols[6][i]), Action: cols[7][i]}
		if row.Name == "" && row.CallingAE == "" && row.PatientID == "" && row.Issuer == "" && row.Modality == "" && row.Description == "" && row.Referring == "" {
			continue
		}
		idx := len(v.Routing.Rules)
		v.Routing.Rules = append(v.Routing.Rules, row)
		key := fmt.Sprintf("routing.rule.%d", idx)
		switch {
		case row.Name == "":
			v.Errors[key] = "Give the rule a name."
		case len(row.Name) > maxField || len(row.CallingAE) > maxField || len(row.PatientID) > maxField || len(row.Issuer) > maxField ||
			len(row.Modality) > maxField || len(row.Referring) > maxField || len(row.Description) > maxRegex:
			v.Errors[key] = "A field is too long."
		case !route.Action(row.Action).Valid():
			v.Errors[key] = "Choose record, dopu or hold."
		}
		if _, bad := v.Errors[key]; bad {
			ok = false
			continue
		}
		// Compile rule by rule so the error lands on its row.
		rule := route.Rule{Name: row.Name, CallingAE: row.CallingAE, PatientID: row.PatientID, IssuerOfPatient: row.Issuer,
			Modality: row.Modality, StudyDescription: row.Description, ReferringDoctor: row.Referring, Action: route.Action(row.Action)}
		if _, err := route.Compile([]route.Rule{rule}, route.ActionHold); err != nil {
			v.Errors[key] = strings.TrimPrefix(err.Error(), route.ErrInvalidRule.Error()+": ")
			ok = false
			continue
		}
		r.Rules = append(r.Rules, rule)
	}
	if !r.Default.Valid() {
		v.Errors["routing.default"] = "Choose record, dopu or hold."
		ok = false
	}
	return r, ok
}

// routingSection reads the routing rules and applies them at once.
func (s *Server) routingSection(c *gin.Context, v *settingsView) (sectionUpdate, error) {
	r, ok := routingFromForm(c, v)
	if !ok {
		return sectionUpdate{}, nil
	}
	if err := s.gw.SetRules(r.Rules, r.Default); err != nil {
		v.Errors["routing.form"] = err.Error()
		return sectionUpdate{}, nil
	}
	return sectionUpdate{SettingRouting, r, fmt.Sprintf("%d rules, default %s", len(r.Rules), r.Default),
		"Routing rules saved and applied to studies routed from now on."}, nil
}

// dryRun routes a chosen study with the rules as edited, without saving
// them, next to what the live rules decide.
func (s *Server) dryRun(c *gin.Context) {
	ctx := c.Request.Context()
	v, err := s.loadSettingsView(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	r, ok := routingFromForm(c, v)
	v.DryStudy = c.PostForm("dry_run_study")
	st, err := s.db.Study(ctx, v.DryStudy)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.fail(c, err)
			return
		}
		v.Errors["routing.dry_run_study"] = "Choose a study."
		ok = false
	}
	if !ok {
		s.showSettings(c, http.StatusUnprocessableEntity, v)
		return
	}
	t, err := route.Compile(r.Rules, r.Default)
	if err != nil {
		s.settingsRefused(c, v, "routing.form", err.Error())
		return
	}
	res := &dryRunResult{Study: st, Live: s.gw.Decide(st), Edited: t.Route(gateway.RouteStudy(st))}
	if err := s.audit(c, "routing-dry-run", st.StudyUID, st.PatientID, res.Edited.String()); err != nil {
		s.fail(c, err)
		return
	}
	v.DryRun = res
	s.showSettings(c, http.StatusOK, v)
}

// smtpSection reads the mail server's section, sealing a new password.
func (s *Server) smtpSection(c *gin.Context, v *settingsView) (sectionUpdate, error) {
	var old SMTPSettings
	if v.saved.SMTP != nil {
		old = *v.saved.SMTP
	}
	f := smtpForm{Host: strings.TrimSpace(c.PostForm("host")), Port: strings.TrimSpace(c.PostForm("port")),
		Security: c.PostForm("security"), Username: strings.TrimSpace(c.PostForm("username")), Auth: c.PostForm("auth"),
		From: strings.TrimSpace(c.PostForm("from")), HELO: strings.TrimSpace(c.PostForm("helo")),
		Institution: strings.TrimSpace(c.PostForm("institution")), HasPassword: len(old.PasswordSealed) > 0}
	v.SMTP = f
	m := SMTPSettings{Host: f.Host, Security: mail.Security(f.Security), Username: f.Username, Auth: mail.AuthMechanism(f.Auth),
		From: f.From, HELO: f.HELO, Institution: f.Institution, PasswordSealed: old.PasswordSealed}
	for k, val := range map[string]string{"smtp.host": f.Host, "smtp.username": f.Username, "smtp.from": f.From, "smtp.helo": f.HELO, "smtp.institution": f.Institution} {
		if len(val) > maxField {
			v.Errors[k] = "Too long."
		}
	}
	if f.Host == "" {
		v.Errors["smtp.host"] = "Enter the SMTP server's host name."
	}
	if f.Port != "" {
		p, err := strconv.Atoi(f.Port)
		if err != nil || p < 1 || p > 65535 {
			v.Errors["smtp.port"] = "A port from 1 to 65535, or empty for the usual one."
		}
		m.Port = p
	}
	switch m.Security {
	case mail.SecurityStartTLS, mail.SecurityStartTLSOpportunistic, mail.SecurityTLS, mail.SecurityNone:
	default:
		v.Errors["smtp.security"] = "Choose a security mode."
	}
	switch m.Auth {
	case mail.AuthAuto, mail.AuthPlain, mail.AuthLogin, mail.AuthCRAMMD5:
	default:
		v.Errors["smtp.auth"] = "Choose an authentication mechanism."
	}
	if _, err := netmail.ParseAddress(f.From); err != nil {
		v.Errors["smtp.from"] = "Enter the sender address, e.g. Radiology <imaging@hospital.example>."
	}
	if pw := c.PostForm("password"); pw != "" {
		switch {
		case len(pw) > maxField:
			v.Errors["smtp.password"] = "Too long."
		case s.cfg.Secrets == nil:
			v.Errors["smtp.password"] = "The gateway has no key to seal passwords with; the password cannot be stored."
		default:
			sealed, err := s.cfg.Secrets.Seal([]byte(pw))
			if err != nil {
				return sectionUpdate{}, err
			}
			m.PasswordSealed = sealed
		}
	}
	if c.PostForm("clear_password") == "1" {
		m.PasswordSealed = nil
	}
	if len(v.Errors) > 0 {
		return sectionUpdate{}, nil
	}
	cfg, err := m.SMTPConfig(s.cfg.Secrets)
	if err != nil {
		return sectionUpdate{}, err
	}
	if _, err := mail.NewSMTP(cfg); err != nil {
		v.Errors["smtp.form"] = err.Error()
		return sectionUpdate{}, nil
	}
	return sectionUpdate{SettingSMTP, m, fmt.Sprintf("server %s port %d security %s user %q", m.Host, m.Port, m.Security, m.Username),
		"SMTP settings saved."}, nil
}

// testSMTP sends the test mail with the saved settings, at once, and
// shows what the server answered.
func (s *Server) testSMTP(c *gin.Context) {
	v, err := s.loadSettingsView(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	to := strings.TrimSpace(c.PostForm("test_to"))
	v.SMTP.TestTo = to
	m := v.saved.SMTP
	if m == nil {
		s.settingsRefused(c, v, "smtp.test_to", "Save the SMTP settings first.")
		return
	}
	cfg, err := m.SMTPConfig(s.cfg.Secrets)
	if err != nil {
		s.fail(c, err)
		return
	}
	tr, err := mail.NewSMTP(cfg)
	if err != nil {
		s.settingsRefused(c, v, "smtp.form", err.Error())
		return
	}
	msg, err := mail.TestMail(to, mail.TestMailData{Institution: m.Institution, Server: tr.Server(), Sent: s.cfg.Now()})
	if err == nil {
		err = msg.Validate()
	}
	if err != nil || to == "" {
		s.settingsRefused(c, v, "smtp.test_to", "Enter an email address to send the test to.")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), tr.Timeout()+5*time.Second)
	defer cancel()
	s.connectionTested(c, v, "smtp-test", "to "+to, tr.Send(ctx, msg),
		fmt.Sprintf("The test mail to %s was accepted by %s.", to, tr.Server()), fmt.Sprintf("The test mail to %s was not sent", to))
}

// connectionTested audits a test of a saved section (what was tested,
// and how it went) and shows its outcome on the page: ok, or failed with
// terr, answered 502 Bad Gateway.
func (s *Server) connectionTested(c *gin.Context, v *settingsView, action, target string, terr error, ok, failed string) {
	outcome := "ok"
	if terr != nil {
		outcome = "failed: " + terr.Error()
	}
	if err := s.audit(c, action, "", "", target+": "+outcome); err != nil {
		s.fail(c, err)
		return
	}
	if terr != nil {
		v.Result = failed + ": " + terr.Error()
		s.showSettings(c, http.StatusBadGateway, v)
		return
	}
	v.Result, v.ResultOK = ok, true
	s.showSettings(c, http.StatusOK, v)
}

// platformSection reads the platform connection's section.
func (s *Server) platformSection(c *gin.Context, v *settingsView) (sectionUpdate, error) {
	f := platformForm{URL: strings.TrimSpace(c.PostForm("url")), CredentialsDir: strings.TrimSpace(c.PostForm("credentials_dir")),
		PublicURL: strings.TrimSpace(c.PostForm("public_url"))}
	v.Platform = f
	if msg := validBaseURL(f.URL); msg != "" {
		v.Errors["platform.url"] = msg
	}
	if f.PublicURL != "" {
		if msg := validBaseURL(f.PublicURL); msg != "" {
			v.Errors["platform.public_url"] = msg
		}
	}
	if len(f.CredentialsDir) > maxField || f.CredentialsDir == "" {
		v.Errors["platform.credentials_dir"] = "Enter the directory holding the application's key and certificate."
	} else if _, err := appcert.Load(f.CredentialsDir); err != nil {
		v.Errors["platform.credentials_dir"] = "No usable credentials there: " + err.Error()
	}
	p := PlatformSettings(f)
	return sectionUpdate{SettingPlatform, p, "url " + p.URL + ", credentials " + p.CredentialsDir, "Platform connection saved. The gateway uses it after the next restart."}, nil
}

func validBaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > maxField {
		return "Enter a URL such as https://platform.example.org."
	}
	return ""
}

// testPlatform authenticates to the saved platform as the application
// and makes one read call.
func (s *Server) testPlatform(c *gin.Context) {
	v, err := s.loadSettingsView(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	p := v.saved.Platform
	if p == nil {
		s.settingsRefused(c, v, "platform.form", "Save the platform connection first.")
		return
	}
	s.connectionTested(c, v, "platform-test", p.URL, testConnection(c.Request.Context(), *p),
		"Connected to "+p.URL+" and authenticated as the application.", "The platform connection failed")
}

// testConnection creates a session (CreateAuthenticatedSessionToken) and
// makes a GetThings call without a record: a platform that answers it
// with a status about the request, not about authentication, accepted
// the application.
func testConnection(ctx context.Context, p PlatformSettings) error {
	creds, err := appcert.Load(p.CredentialsDir)
	if err != nil {
		return err
	}
	cl, err := client.New(client.Config{URL: p.URL, Credentials: creds, MaxAttempts: 1,
		HTTPClient: &http.Client{Timeout: 15 * time.Second}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = cl.Call(ctx, "GetThings", 3, "", nil, nil)
	switch wire.CodeOf(err) {
	case wire.OK:
		return nil
	case wire.Failed, wire.InvalidApp, wire.BadSig, wire.BadCert, wire.CredentialTokenExpired, wire.InvalidToken,
		wire.AuthenticatedSessionTokenExpired, wire.AccessDenied:
		return err
	}
	return nil
}

// previewsSection reads the preview sizes' section.
func (s *Server) previewsSection(c *gin.Context, v *settingsView) (sectionUpdate, error) {
	f := previewsForm{PreviewSize: strings.TrimSpace(c.PostForm("preview_size")), ThumbnailSize: strings.TrimSpace(c.PostForm("thumbnail_size")),
		Quality: strings.TrimSpace(c.PostForm("quality"))}
	v.Previews = f
	num := func(key, val string, lo, hi int) int {
		n, err := strconv.Atoi(val)
		if err != nil || n < lo || n > hi {
			v.Errors[key] = fmt.Sprintf("A whole number from %d to %d.", lo, hi)
		}
		return n
	}
	p := PreviewSettings{PreviewSize: num("previews.preview_size", f.PreviewSize, 128, 4096),
		ThumbnailSize: num("previews.thumbnail_size", f.ThumbnailSize, 32, 1024), Quality: num("previews.quality", f.Quality, 1, 100)}
	if len(v.Errors) == 0 && p.ThumbnailSize > p.PreviewSize {
		v.Errors["previews.thumbnail_size"] = "The thumbnail cannot be larger than the preview."
	}
	return sectionUpdate{SettingPreviews, p, fmt.Sprintf("preview %d, thumbnail %d, quality %d", p.PreviewSize, p.ThumbnailSize, p.Quality),
		"Preview sizes saved; deliveries use them after the next restart."}, nil
}

func truncateStr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
