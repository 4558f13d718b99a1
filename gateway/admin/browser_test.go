package admin_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dicomgate/dimse"
	"dicomgate/dimse/dicomtest"
	"dicomgate/gateway"
	"dicomgate/gateway/admin"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
)

const chromiumPath = "/usr/bin/chromium"

// artifactDir is where screenshots go (gitignored).
func artifactDir(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("testdata", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowser drives the UI with headless Chromium: sign in, watch a study
// that DCMTK's storescu sends to the real DICOM listener travel to
// delivered in the bundled platform, open it, change a setting, and create
// a DOPU package from a held study's page whose code mail then waits in
// the outbox (no SMTP server is configured).
func TestBrowser(t *testing.T) {
	dicomtest.RequireFile(t, chromiumPath)
	storescu := dicomtest.LookPath(t, "storescu")
	ctFile, mrFile := dicomtest.PydicomFile(t, "CT_small.dcm"), dicomtest.PydicomFile(t, "MR_small.dcm")

	// The real DICOM listener; its handler, the gateway, is set below.
	dsrv := &dimse.Server{AETitle: "DICOMGATE"}
	var d dopuSetup
	e := newEnv(t, func(_ *env, g *gatewayConfig, c *admin.Config) {
		c.Now = time.Now
		c.Associations = listenerAssociations{dsrv}
		// A quiet period longer than the dashboard's 2 s poll, so the
		// browser sees the study wait before it is delivered.
		g.QuietPeriod = 5 * time.Second
		g.Rules = []route.Rule{{Name: "CT to the record", Modality: "CT", Action: route.ActionRecord}}
	}, withDOPU(t, &d, route.ActionHold)) // mails stay queued in the outbox: there is no SMTP transport
	// CT_small.dcm's patient is connected to the platform's record.
	if err := e.gw.LinkPatient(context.Background(), store.PatientLink{ExternalID: "1CT1", PersonID: d.p.personID, RecordID: d.p.recordID, AuthorizedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dsrv.Handler = e.gw
	ctx, cancel := context.WithCancel(context.Background())
	dDone := make(chan struct{})
	go func() { dsrv.Serve(ctx, ln); close(dDone) }()
	t.Cleanup(func() { cancel(); <-dDone })
	e.user("radiographer", store.RoleAdmin)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 2*time.Minute)
	defer tcancel()
	arts := artifactDir(t)
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100 gives a PNG
			if err != nil {
				return err
			}
			path := filepath.Join(arts, name)
			t.Logf("screenshot %s", path)
			return os.WriteFile(path, buf, 0o644)
		})
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	base := e.http.URL

	// Sign in.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css(`#username`)),
		chromedp.SendKeys(css(`#username`), "radiographer"),
		chromedp.SendKeys(css(`#password`), "correct horse battery"),
		shot("01-login.png"),
		chromedp.Click(css(`#signin`)),
		chromedp.WaitVisible(css(`header .who`)),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	who, err := chromedp.Run(bctx, chromedp.Text(css(`header .who`)))
	if err != nil || !strings.Contains(who, "radiographer") {
		t.Fatalf("signed in as %q, %v", who, err)
	}

	// Send two studies with DCMTK; the open dashboard shows the CT arrive
	// and, by polling, reach delivered. The MR matches no rule: it is held.
	dicomtest.Run(t, storescu, "-aet", "CT1", "-aec", "DICOMGATE", "127.0.0.1", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), ctFile, mrFile)
	st := e.studyOf("1CT1")
	row := `tr.study[data-uid="` + st.StudyUID + `"]`
	if err := chromedp.Do(bctx,
		chromedp.WaitVisible(css(row+`[data-state="receiving"]`)),
		shot("02-dashboard-received.png"),
		chromedp.WaitVisible(css(row+`[data-state="delivered"]`)),
		shot("03-dashboard-delivered.png"),
	); err != nil {
		s, _ := e.db.Study(context.Background(), st.StudyUID)
		t.Fatalf("dashboard: %v (study is %s, error %q)", err, s.State, s.Error)
	}
	if s, _ := e.db.Study(context.Background(), st.StudyUID); s.State != store.StateDelivered || s.ThingID == "" {
		t.Fatalf("study after delivery: %+v", s)
	}

	// The study page: facts, thumbnail, history.
	if err := chromedp.Do(bctx,
		chromedp.Click(css(row+` a`)),
		chromedp.WaitVisible(css(`#history`)),
	); err != nil {
		t.Fatalf("study page: %v", err)
	}
	loaded, err := chromedp.Run(bctx, chromedp.Poll[bool](`(() => { const i = document.querySelector('.series img'); return !!(i && i.complete && i.naturalWidth > 0); })()`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil || !loaded {
		t.Fatalf("thumbnail did not load: %v", err)
	}
	if err := chromedp.Do(bctx, shot("04-study.png")); err != nil {
		t.Fatal(err)
	}

	// Change a setting.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/settings"),
		chromedp.WaitVisible(css(`#ae_title`)),
		chromedp.SetValue(css(`#ae_title`), "RADIOLOGY_GW"),
		chromedp.Click(css(`#save-dicom`)),
		chromedp.WaitVisible(css(`p.flash`)),
		shot("05-settings-saved.png"),
	); err != nil {
		t.Fatalf("settings: %v", err)
	}
	flash, err := chromedp.Run(bctx, chromedp.Text(css(`p.flash`)))
	if err != nil || !strings.Contains(flash, "DICOM settings saved") {
		t.Fatalf("flash after saving: %q, %v", flash, err)
	}
	all, err := admin.LoadSettings(context.Background(), e.db)
	if err != nil || all.DICOM == nil || all.DICOM.AETitle != "RADIOLOGY_GW" {
		t.Fatalf("stored DICOM settings = %+v, %v", all.DICOM, err)
	}
	if !e.audited("view-study", st.StudyUID) || !e.audited("settings-saved", "") {
		t.Fatal("browser session not audited")
	}

	// A DOPU package for the held MR, from its study page.
	mr := e.studyOf("4MR1")
	waitState(t, e, mr.StudyUID, store.StateHeld)
	const answer = "Fluffy the cat"
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/studies/"+mr.StudyUID),
		chromedp.WaitVisible(css(`#pickup-form`)),
		chromedp.SendKeys(css(`#pickup-email`), "jane@example.org"),
		chromedp.SendKeys(css(`#pickup-friendly_name`), "Jane Doe, MR of the knee"),
		chromedp.SendKeys(css(`#pickup-question`), "Name of your first pet?"),
		chromedp.SendKeys(css(`#pickup-answer`), answer),
		chromedp.SendKeys(css(`#pickup-answer2`), answer),
		shot("06-study-pickup-form.png"),
		chromedp.Click(css(`#create-pickup`)),
		chromedp.WaitVisible(css(`#pickup-code`)),
	); err != nil {
		t.Fatalf("create pick-up: %v", err)
	}
	ps, err := e.db.Pickups(context.Background())
	if err != nil || len(ps) != 1 {
		t.Fatalf("registrations %+v, %v", ps, err)
	}
	shown, err := chromedp.Run(bctx, chromedp.Text(css(`#pickup-code`)))
	if err != nil || shown != ps[0].IdentityCode {
		t.Fatalf("code on the page %q, registered %q (%v)", shown, ps[0].IdentityCode, err)
	}
	waitPickup(t, e, ps[0].ID, gateway.PickupMailed)
	if err := chromedp.Do(bctx,
		chromedp.Reload(),
		chromedp.WaitVisible(css(`#resend-code`)),
		shot("07-study-pickup.png"),
		chromedp.Navigate(base+"/outbox"),
		chromedp.WaitVisible(css(`tr.mail[data-state="queued"]`)),
		shot("08-outbox.png"),
	); err != nil {
		t.Fatalf("outbox: %v", err)
	}
	queued, err := chromedp.Run(bctx, chromedp.Text(css(`tr.mail[data-state="queued"]`)))
	if err != nil || !strings.Contains(queued, "jane@example.org") || !strings.Contains(queued, "ready to pick up") {
		t.Fatalf("outbox row %q, %v", queued, err)
	}
	// The printable letter renders with its own styles.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/pickups/"+itoa(ps[0].ID)+"/letter"),
		chromedp.WaitVisible(css(`.code`)),
		shot("09-pickup-letter.png"),
	); err != nil {
		t.Fatalf("letter: %v", err)
	}
	styled, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('.code')).fontFamily`))
	if err != nil || !strings.Contains(styled, "Courier") {
		t.Fatalf("letter styles blocked? code font %q, %v", styled, err)
	}
	// Its print button's inline handler is the one script the letter's
	// CSP allows (by hash); a blocked handler would be null.
	printable, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`typeof document.querySelector('.print button').onclick === 'function'`))
	if err != nil || !printable {
		t.Fatalf("letter's print button handler blocked: %v", err)
	}
	// The patients page lists the registration with its actions.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/patients"),
		chromedp.WaitVisible(css(`tr.pickup[data-state="mailed"] button.resend`)),
		shot("10-patients.png"),
	); err != nil {
		t.Fatalf("patients page: %v", err)
	}

	// A Patient Connect invitation, and its letter (opened in this tab
	// rather than a new one).
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(css(`#invite-patient_id`), "P-77"),
		chromedp.SendKeys(css(`#invite-friendly_name`), "John Roe"),
		chromedp.SendKeys(css(`#invite-email`), "john@example.org"),
		chromedp.SendKeys(css(`#invite-question`), "Street you grew up in?"),
		chromedp.SendKeys(css(`#invite-answer`), answer),
		chromedp.SendKeys(css(`#invite-answer2`), answer),
		chromedp.Click(css(`#invite`)),
		chromedp.WaitVisible(css(`#invite-code`)),
		shot("11-invited.png"),
	); err != nil {
		t.Fatalf("invite: %v", err)
	}
	code, err := chromedp.Run(bctx, chromedp.Text(css(`#invite-code`)))
	if err != nil || !codeRE.MatchString(code) {
		t.Fatalf("invitation code %q, %v", code, err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('#invited form').removeAttribute('target'), true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx,
		chromedp.Click(css(`#print-connect-letter`)),
		chromedp.WaitVisible(css(`#letter-code`)),
		shot("12-connect-letter.png"),
	); err != nil {
		t.Fatalf("connect letter: %v", err)
	}
	if got, err := chromedp.Run(bctx, chromedp.Text(css(`#letter-code`))); err != nil || got != code {
		t.Fatalf("letter code %q, want %q (%v)", got, code, err)
	}
}
