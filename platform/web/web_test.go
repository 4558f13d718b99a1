package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dicomgate/dimse/dicomtest"
	"dicomgate/platform/client"
	"dicomgate/platform/dopu"
	"dicomgate/platform/platformtest"
	"dicomgate/platform/thing"
	"dicomgate/platform/web"
)

const (
	answer  = "Fluffy the Cat"
	misV2   = "cdfc0a9b-6d3b-4d16-afa8-02b86d621a8d"
	noteTyp = "a5294488-f865-4ce3-92fa-187cd3b58930"
)

// artifactDir is testdata/artifacts/web at the module root (gitignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return t.TempDir()
		}
		dir = parent
	}
	d := filepath.Join(dir, "testdata", "artifacts", "web")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func jpegOf(t *testing.T, w, h int, c color.RGBA) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: c.R ^ uint8(x*4), G: c.G ^ uint8(y*4), B: c.B, A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func inline(name, b64 string) thing.Blob {
	return thing.Blob{Info: thing.BlobInfo{Name: name, ContentType: "image/jpeg"}, Base64Data: b64}
}

// studyPackage creates a DOPU package holding a medical image study with
// JPEG previews (inline blobs) and a real DICOM file (an encrypted
// streamed blob).
func studyPackage(t *testing.T, c *client.Client, dicom []byte) string {
	t.Helper()
	ctx := context.Background()
	key, err := dopu.NewKey(answer, dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	dcm, err := c.UploadPackageBlob(ctx, key, "1.2.840.99.1.1", "application/dicom", bytes.NewReader(dicom))
	if err != nil {
		t.Fatal(err)
	}
	st := &thing.Thing{Type: &thing.TypeID{ID: misV2}}
	st.SetData([]byte(`<medical-image-study><when><date><y>2024</y><m>5</m><d>17</d></date></when><description>CT CHEST</description>` +
		`<series><description>Axial 1mm</description><images><image-blob-name>1.2.840.99.1.1</image-blob-name><image-preview-blob-name>thumb-1</image-preview-blob-name></images>` +
		`<modality><text>CT</text></modality><preview-blob-name>series-1</preview-blob-name></series>` +
		`<preview-blob-name>study</preview-blob-name><study-instance-uid>1.2.840.99</study-instance-uid></medical-image-study>`))
	st.SetBlob(dcm)
	st.SetBlob(inline("study", jpegOf(t, 160, 120, color.RGBA{200, 40, 40, 255})))
	st.SetBlob(inline("series-1", jpegOf(t, 128, 96, color.RGBA{40, 200, 40, 255})))
	st.SetBlob(inline("thumb-1", jpegOf(t, 64, 64, color.RGBA{40, 40, 200, 255})))
	x, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := key.Seal(x, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, err := c.CreateConnectPackage(ctx, client.ConnectPackage{FriendlyName: "Pat", Question: "Your first pet?", ExternalID: "mrn-1",
		Package: pkg, StreamedBlobRefs: []string{dcm.RefURL}})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func notePackage(t *testing.T, c *client.Client) string {
	t.Helper()
	n := &thing.Thing{Type: &thing.TypeID{ID: noteTyp}}
	n.SetData([]byte("<note>x</note>"))
	x, _ := n.Marshal()
	pkg, err := dopu.Seal(answer, x, dopu.HMACSHA256AES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, err := c.CreateConnectPackage(context.Background(), client.ConnectPackage{FriendlyName: "Pat", Question: "Pet?", ExternalID: "mrn-2", Package: pkg})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestBrowserWalk drives the patient pages with headless Chromium: sign
// up, pick up a study package, lock a package with three wrong answers,
// authorize an application with Patient Connect, look at the record and
// study pages (every image must load) and download the zip.
func TestBrowserWalk(t *testing.T) {
	chromium := dicomtest.LookPath(t, "chromium")
	dicom, err := os.ReadFile(dicomtest.SuyashFile(t, "1.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	p := platformtest.Start(t, platformtest.Options{})
	h, err := web.New(web.Config{Server: p.Server, PublicURL: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	h.Mount(p.Server)
	ctx := context.Background()
	if err := p.Store.SetAppSuccessMessage(ctx, p.Credentials.AppID, "Thank you! Your images from Radiology are in your record."); err != nil {
		t.Fatal(err)
	}
	studyCode := studyPackage(t, p.Client, dicom)
	lockCode := notePackage(t, p.Client)
	connectCode, err := p.Client.CreateConnectRequest(ctx, "Pat", "Your first pet?", answer, "mrn-3", "")
	if err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(412, 915), // a phone
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}

	art := artifactDir(t)
	step := func(name string) (context.Context, context.CancelFunc) {
		return context.WithTimeout(bctx, 20*time.Second)
	}
	do := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := step(name)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	str := func(name string, a chromedp.Action[string]) string {
		t.Helper()
		sctx, cancel := step(name)
		defer cancel()
		v, err := chromedp.Run(sctx, a)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	num := func(name, expr string) int {
		t.Helper()
		sctx, cancel := step(name)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[int](expr))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		sctx, cancel := step(name)
		defer cancel()
		buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(art, name+".png")
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	link := func(target, code string) string {
		return p.URL + "/redirect.aspx?target=" + target + "&targetqs=" + url.QueryEscape("packageid="+code)
	}
	allLoaded := func(name string) {
		t.Helper()
		sctx, cancel := step(name)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](`document.images.length > 0 && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)`,
			chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("%s: images did not all load: %v", name, err)
		}
	}

	// Sign up (the pick-up link first sends the patient to sign in).
	do("sign up",
		chromedp.Navigate(link("PICKUP", studyCode)),
		chromedp.WaitVisible(css(`a[href^="/signup"]`)),
		chromedp.Click(css(`a[href^="/signup"]`)),
		chromedp.WaitVisible(css(`#login`)),
		chromedp.SendKeys(css(`#login`), "pat"),
		chromedp.SendKeys(css(`#name`), "Pat Patient"),
		chromedp.SendKeys(css(`#password`), "a long enough password"),
	)
	shot("01-signup")
	do("submit sign-up", chromedp.Click(css(`#submit`)), chromedp.WaitVisible(css(`#code`)))
	// Back at the pick-up with the code filled in.
	if v := str("code", chromedp.Value(css(`#code`))); v != studyCode {
		t.Fatalf("code field = %q, want %q", v, studyCode)
	}
	do("question", chromedp.Click(css(`#submit`)), chromedp.WaitVisible(css(`#answer`)))
	from := str("from", chromedp.Text(css(`.from`)))
	shot("02-question")
	do("answer", chromedp.SendKeys(css(`#answer`), strings.ToLower(answer)), chromedp.Click(css(`#submit`)),
		chromedp.WaitVisible(css(`input[name=record]`)))
	shot("03-choose-record")
	do("deliver", chromedp.Click(css(`#submit`)), chromedp.WaitVisible(css(`#success`)))
	success := str("success", chromedp.Text(css(`#success`)))
	shot("04-picked-up")
	if !strings.Contains(from, "Pat") || !strings.Contains(success, "Thank you! Your images from Radiology") {
		t.Fatalf("pick-up pages: from %q, success %q", from, success)
	}

	// The record page with the study and its loaded preview.
	do("record page", chromedp.Click(css(`a[href^="/records/"]`)), chromedp.WaitVisible(css(`.study`)))
	allLoaded("record page")
	meta := str("meta", chromedp.Text(css(`.study .meta`)))
	n := num("record images", `document.images.length`)
	shot("05-record")
	if n != 1 || !strings.Contains(meta, "2024-05-17") || !strings.Contains(meta, "CT") || !strings.Contains(meta, "1 series") || !strings.Contains(meta, "1 images") {
		t.Fatalf("record page: %d images, meta %q", n, meta)
	}
	do("study page", chromedp.Click(css(`.study a`)), chromedp.WaitVisible(css(`#zip`)))
	allLoaded("study page")
	if n := num("study images", `document.images.length`); n != 2 {
		t.Fatalf("study page shows %d images, want series preview and thumbnail", n)
	}
	shot("06-study")
	// The zip, fetched by the page (with its cookies) and checked here.
	sctx, scancel := step("zip")
	zipB64, err := chromedp.Run(sctx, chromedp.Evaluate[string](`fetch(document.getElementById('zip').href).then(r => r.arrayBuffer()).then(b => {
		let s = ''; const u = new Uint8Array(b); for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]); return btoa(s); })`,
		chromedp.EvalAwaitPromise))
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	zb, err := base64.StdEncoding.DecodeString(zipB64)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 {
		t.Fatalf("zip has %d files", len(zr.File))
	}
	f, _ := zr.File[0].Open()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, dicom) || !strings.HasSuffix(zr.File[0].Name, ".dcm") {
		t.Fatalf("zip entry %s differs from the DICOM file", zr.File[0].Name)
	}
	// Without the session cookie the zip is not served.
	zipHref := str("zip href", chromedp.Evaluate[string](`document.getElementById('zip').getAttribute('href')`))
	resp, err := http.Get(p.URL + zipHref)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/signin" {
		t.Fatalf("zip without session ended at %s", resp.Request.URL)
	}

	// Three wrong answers lock a package (the code typed with spaces, lower case).
	typed := strings.ToLower(strings.ReplaceAll(lockCode, "-", " "))
	// errorSays waits for the page's error to say text, riding out the
	// navigation that a form submission starts.
	pageSays := func(selector, text string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			for {
				v, err := chromedp.Evaluate[string](`(document.querySelector('`+selector+`') || {textContent: ''}).textContent`)(ctx, tg)
				if err == nil && strings.Contains(v, text) {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("waiting for %q (last %q, %v): %w", text, v, err, ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	errorSays := func(text string) chromedp.Action[chromedp.Void] { return pageSays(".error", text) }
	do("lock-out",
		chromedp.Navigate(p.URL+"/pickup"),
		chromedp.WaitVisible(css(`#code`)), chromedp.SendKeys(css(`#code`), typed), chromedp.Click(css(`#submit`)),
		chromedp.WaitVisible(css(`#answer`)), chromedp.SendKeys(css(`#answer`), "wrong one"), chromedp.Click(css(`#submit`)),
		errorSays("2 tries left"),
		chromedp.SendKeys(css(`#answer`), "wrong two"), chromedp.Click(css(`#submit`)),
		errorSays("1 tries left"),
	)
	shot("07-one-try-left")
	do("third wrong answer", chromedp.SendKeys(css(`#answer`), "wrong three"), chromedp.Click(css(`#submit`)), errorSays("locked"),
		chromedp.WaitVisible(css(`#code`)))
	shot("08-locked")

	// Patient Connect.
	do("connect",
		chromedp.Navigate(link("CONNECT", connectCode)),
		chromedp.WaitVisible(css(`#code`)), chromedp.Click(css(`#submit`)),
		chromedp.WaitVisible(css(`#answer`)), chromedp.SendKeys(css(`#answer`), answer), chromedp.Click(css(`#submit`)),
		chromedp.WaitVisible(css(`input[name=record]`)), chromedp.Click(css(`#submit`)),
		chromedp.WaitVisible(css(`#success`)),
	)
	shot("09-connected")
	reqs, err := p.Client.GetAuthorizedConnectRequests(ctx, time.Time{})
	if err != nil || len(reqs) != 1 || reqs[0].ExternalID != "mrn-3" {
		t.Fatalf("authorized connect requests = %+v, %v", reqs, err)
	}

	// Remove the study.
	do("remove",
		chromedp.Navigate(p.URL+"/records/"+reqs[0].RecordID),
		chromedp.WaitVisible(css(`.study a`)), chromedp.Click(css(`.study a`)),
		chromedp.WaitVisible(css(`#remove`)), chromedp.Click(css(`#remove`)),
		pageSays("main", "No imaging studies yet"),
	)

	person, err := p.Store.PersonByLogin(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	events, err := p.Store.Audits(ctx, person.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range events {
		actions[e.Action] = true
		if strings.Contains(e.Detail, studyCode) || strings.Contains(strings.ToLower(e.Detail), "fluffy") {
			t.Fatalf("audit leaks a code or answer: %+v", e)
		}
	}
	for _, a := range []string{"pickup", "connect", "view", "download", "remove"} {
		if !actions[a] {
			t.Errorf("no %q audit event (%v)", a, actions)
		}
	}
}
