package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf16"

	"dicomgate/gateway/jobs"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/route"
	"dicomgate/gateway/store"
	"dicomgate/platform/client"
	"dicomgate/platform/dopu"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// Pick-up registration states.
const (
	PickupRegistered = "registered" // waiting for its study
	PickupCreating   = "creating"   // the package is being created
	PickupPackaged   = "packaged"   // the package exists; the answer is erased
	PickupMailed     = "mailed"     // the code mail is in the outbox
	PickupDeleted    = "deleted"    // staff deleted the pending package
)

// ErrNoSealer reports a gateway configured without a key to seal pick-up
// answers with.
var ErrNoSealer = errors.New("gateway: no key to seal answers with")

// Mailer queues mail; *mail.Outbox implements it. EnqueueOnce queues a
// message at most once per key, whatever the retries after a crash.
type Mailer interface {
	Enqueue(ctx context.Context, m mail.Message) (int64, error)
	EnqueueOnce(ctx context.Context, key string, m mail.Message) (int64, error)
}

var _ Mailer = (*mail.Outbox)(nil)

// Sealer keeps secret answers sealed at rest; *keyfile.Key implements it.
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// FieldError reports an invalid form field, for the admin UI to show next
// to the field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// PickupRequest is what the front desk types to register a drop-off/
// pick-up for a patient.
type PickupRequest struct {
	// StudyUID, when set, packages that study (held, waiting or failed)
	// for this registration; otherwise the registration waits for the
	// patient's next study, or takes one already waiting.
	StudyUID          string
	PatientID         string
	IssuerOfPatientID string
	AccessionNumber   string // optional: only this study
	Email             string
	FriendlyName      string
	Question          string
	Answer            string
}

func (r *PickupRequest) validate() error {
	r.PatientID, r.Email = strings.TrimSpace(r.PatientID), strings.TrimSpace(r.Email)
	r.FriendlyName, r.Question = strings.TrimSpace(r.FriendlyName), strings.TrimSpace(r.Question)
	switch {
	case r.PatientID == "":
		return &FieldError{"patient_id", "the patient ID is required"}
	case r.FriendlyName == "":
		return &FieldError{"friendly_name", "a name the patient recognises is required"}
	case len(r.FriendlyName) > 256:
		return &FieldError{"friendly_name", "at most 256 characters"}
	case r.Question == "":
		return &FieldError{"question", "a secret question is required"}
	case len(r.Question) > 1024:
		return &FieldError{"question", "at most 1024 characters"}
	case len(utf16.Encode([]rune(r.Answer))) < dopu.MinAnswerLength:
		return &FieldError{"answer", fmt.Sprintf("the answer needs at least %d characters", dopu.MinAnswerLength)}
	case len(r.Answer) > 1024:
		return &FieldError{"answer", "at most 1024 characters"}
	}
	a, err := netmail.ParseAddress(r.Email)
	if err != nil || a.Address != r.Email {
		return &FieldError{"email", "not an email address"}
	}
	return nil
}

// RegisterPickup registers a drop-off/pick-up for a patient: the identity
// code is allocated at once (so it can be handed over), the answer sealed
// with the gateway's key until the package is built, and any study of the
// patient already waiting is sent on its way.
func (g *Gateway) RegisterPickup(ctx context.Context, r PickupRequest) (store.Pickup, error) {
	if g.cfg.Sealer == nil {
		return store.Pickup{}, ErrNoSealer
	}
	if err := r.validate(); err != nil {
		return store.Pickup{}, err
	}
	code, err := g.platform.AllocatePackageID(ctx)
	if err != nil {
		return store.Pickup{}, fmt.Errorf("gateway: allocate identity code: %w", err)
	}
	sealed, err := g.cfg.Sealer.Seal([]byte(r.Answer))
	if err != nil {
		return store.Pickup{}, err
	}
	now := g.cfg.Now()
	p, err := g.store.CreatePickup(ctx, store.Pickup{
		PatientID: r.PatientID, IssuerOfPatientID: strings.TrimSpace(r.IssuerOfPatientID), AccessionNumber: strings.TrimSpace(r.AccessionNumber),
		Email: r.Email, FriendlyName: r.FriendlyName, Question: r.Question, AnswerSealed: sealed, IdentityCode: code,
		State: PickupRegistered, CreatedAt: now, ExpiresAt: now.Add(g.cfg.PackageTTL),
	})
	if err != nil {
		return store.Pickup{}, err
	}
	g.log.Info("pick-up registered", "pickup", p.ID)
	if r.StudyUID != "" {
		if err := g.releaseTo(ctx, r.StudyUID, p); err != nil {
			return p, err
		}
		return g.store.Pickup(ctx, p.ID)
	}
	// Studies of this patient that wait for a pick-up (or for a Patient
	// Connect mapping that the front desk chose DOPU over) go now.
	waiting, err := g.store.Studies(ctx, store.StudyFilter{PatientID: r.PatientID,
		States: []store.StudyState{store.StateWaitingPickup, store.StateWaitingPatient}, Limit: 1000})
	if err != nil {
		return p, err
	}
	for _, st := range waiting {
		if st.IssuerOfPatientID != p.IssuerOfPatientID || (p.AccessionNumber != "" && p.AccessionNumber != st.AccessionNumber) {
			continue
		}
		if err := g.Release(ctx, st.StudyUID, route.ActionDOPU); err != nil {
			return p, err
		}
		break // one registration, one package
	}
	return g.store.Pickup(ctx, p.ID)
}

// releaseTo sends one study to a drop-off/pick-up package for the given
// registration.
func (g *Gateway) releaseTo(ctx context.Context, uid string, p store.Pickup) error {
	_, err := g.store.UpdateStudy(ctx, uid, func(s *store.Study) error {
		switch s.State {
		case store.StateHeld, store.StateWaitingPatient, store.StateWaitingPickup, store.StateFailed:
		default:
			return fmt.Errorf("%w: study is %s", ErrNotDeliverable, s.State)
		}
		if s.PatientID != p.PatientID || s.IssuerOfPatientID != p.IssuerOfPatientID {
			return fmt.Errorf("%w: the registration is for another patient", ErrNotDeliverable)
		}
		s.Route, s.RouteReason, s.Error = string(route.ActionDOPU), "dopu (staff registered a pick-up)", ""
		s.PickupID, s.State = p.ID, store.StateQueued
		return nil
	})
	if err != nil {
		return err
	}
	st, err := g.store.Study(ctx, uid)
	if err != nil {
		return err
	}
	if err := g.bindPickup(ctx, st); err != nil {
		return err
	}
	g.event(ctx, uid, "released", "staff registered pick-up %d for the study", p.ID)
	return g.enqueue(ctx, uid)
}

// pickupFor finds the registration a study would be packaged for.
func (g *Gateway) pickupFor(ctx context.Context, s store.Study) (*store.Pickup, error) {
	p, err := g.store.FindPickup(ctx, s.PatientID, s.IssuerOfPatientID, s.AccessionNumber)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if p.State != PickupRegistered {
		return nil, nil
	}
	return &p, nil
}

// bindPickup ties a queued study to its registration so no other study
// takes it. Idempotent.
func (g *Gateway) bindPickup(ctx context.Context, st store.Study) error {
	if st.PickupID == 0 {
		return nil
	}
	p, err := g.store.Pickup(ctx, st.PickupID)
	if err != nil {
		return err
	}
	if p.StudyUID == st.StudyUID {
		return nil
	}
	if p.StudyUID != "" {
		return fmt.Errorf("%w: pick-up %d belongs to study %s", jobs.ErrPermanent, p.ID, p.StudyUID)
	}
	p.StudyUID = st.StudyUID
	return g.store.UpdatePickup(ctx, p)
}

// deliverDOPU seals a study into a drop-off/pick-up package (SPEC §6): the
// files and previews as streamed package blobs encrypted chunk by chunk,
// the medical image study thing sealed with the patient's answer, the
// package created under the identity code allocated at registration, the
// answer erased and the code mailed.
func (g *Gateway) deliverDOPU(ctx context.Context, st store.Study, attempt int) error {
	if err := g.bindPickup(ctx, st); err != nil {
		return err
	}
	p, err := g.store.Pickup(ctx, st.PickupID)
	if err != nil {
		return fmt.Errorf("%w: pick-up registration: %v", jobs.ErrPermanent, err)
	}
	switch p.State {
	case PickupPackaged, PickupMailed:
		// Resumed after the package was made. Which instances it holds
		// was not recorded: those indexed now are taken as packaged.
		ins, err := g.store.StudyInstances(ctx, st.StudyUID)
		if err != nil {
			return err
		}
		return g.finishDOPU(ctx, st, p, ins)
	case PickupDeleted:
		return fmt.Errorf("%w: the pick-up was deleted", jobs.ErrPermanent)
	}
	if len(p.AnswerSealed) == 0 {
		return fmt.Errorf("%w: the pick-up has no answer", jobs.ErrPermanent)
	}
	answer, err := g.cfg.Sealer.Open(p.AnswerSealed)
	if err != nil {
		return fmt.Errorf("%w: sealed answer: %v", jobs.ErrPermanent, err)
	}
	key, err := dopu.NewKey(string(answer), dopu.HMACSHA256AES256, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
	}
	ins, err := g.store.StudyInstances(ctx, st.StudyUID)
	if err != nil {
		return err
	}
	fs, err := facts(ins)
	if err != nil {
		return fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
	}
	// A package is sealed with a fresh salt each attempt, so blobs of an
	// earlier attempt cannot be reused: every blob is uploaded again.
	tasks := g.plan(ins, fs)
	if _, err := g.store.UpdateStudy(ctx, st.StudyUID, func(s *store.Study) error {
		s.State, s.BlobsTotal, s.BlobsDone, s.Attempts = store.StateUploading, blobCount(tasks), 0, attempt
		return nil
	}); err != nil {
		return err
	}
	up := func(ctx context.Context, name, contentType string, r io.Reader) (thing.Blob, error) {
		return g.platform.UploadPackageBlob(ctx, key, name, contentType, r)
	}
	done := map[string]store.UploadedBlob{}
	if err := g.uploadWith(ctx, st, tasks, fs, done, up, false); err != nil {
		return err
	}
	typeID, _ := g.cfg.MISVersion.TypeID()
	t, err := g.thingFor(typeID, fs, nil, done)
	if err != nil {
		return fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
	}
	things, err := xml.Marshal(t)
	if err != nil {
		return fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
	}
	pkg, err := key.Seal(things, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", jobs.ErrPermanent, err)
	}
	var refs []string
	for _, b := range t.BlobPayload.Blobs {
		refs = append(refs, b.RefURL)
	}
	// Remember that creation was tried: a retry after a lost reply then
	// knows an "already has a package" answer is its own package.
	tried := p.State == PickupCreating
	if !tried {
		p.State = PickupCreating
		if err := g.store.UpdatePickup(ctx, p); err != nil {
			return err
		}
	}
	_, err = g.platform.CreateConnectPackage(ctx, client.ConnectPackage{
		IdentityCode: p.IdentityCode, FriendlyName: p.FriendlyName, Question: p.Question,
		ExternalID: ExternalID(st.PatientID, st.IssuerOfPatientID), Package: pkg, StreamedBlobRefs: refs,
	})
	if err != nil {
		if !tried || wire.CodeOf(err) != wire.InvalidIdentityCode {
			return fmt.Errorf("create package: %w", err)
		}
		// An earlier attempt may have created the package and lost the
		// reply. A no-op UpdateExternalId succeeds only when a package
		// exists under the code: then it is ours.
		ext := ExternalID(st.PatientID, st.IssuerOfPatientID)
		if uerr := g.platform.UpdateExternalID(ctx, p.IdentityCode, "", ext); uerr != nil {
			return fmt.Errorf("create package: %w (and no package exists under the code: %v)", err, uerr)
		}
	}
	p.State, p.AnswerSealed = PickupPackaged, nil // the answer is not kept once sealed in
	if err := g.store.UpdatePickup(ctx, p); err != nil {
		return err
	}
	g.event(ctx, st.StudyUID, "packaged", "drop-off/pick-up package %d with %d blobs created; answer erased", p.ID, len(refs))
	return g.finishDOPU(ctx, st, p, ins)
}

// finishDOPU mails the code (once) and marks the packaged instances ins
// and their study delivered. Instances that arrived while the package was
// made are not in it: the study goes back to receiving for them.
func (g *Gateway) finishDOPU(ctx context.Context, st store.Study, p store.Pickup, ins []store.Instance) error {
	if p.State == PickupPackaged {
		if err := g.mailCode(ctx, p, true); err != nil {
			return err
		}
		p.State = PickupMailed
		if err := g.store.UpdatePickup(ctx, p); err != nil {
			return err
		}
	}
	if _, err := g.markDelivered(ctx, st.StudyUID, ins, func(s *store.Study) { s.PackageCode = p.IdentityCode }); err != nil {
		return err
	}
	g.event(ctx, st.StudyUID, "delivered", "pick-up code mailed to the patient")
	return nil
}

// Invitation returns what the code mail and the printed letter of a
// registration say.
func (g *Gateway) Invitation(p store.Pickup) mail.Invitation {
	return mail.Invitation{FriendlyName: p.FriendlyName, IdentityCode: p.IdentityCode, PublicURL: g.cfg.PublicURL,
		Expires: p.ExpiresAt, Institution: g.cfg.Institution}
}

// mailCode queues the pick-up mail of a registration; once tells it to
// queue the registration's first code mail at most once (a delivery
// retried after a crash between queueing and recording finds it queued).
func (g *Gateway) mailCode(ctx context.Context, p store.Pickup, once bool) error {
	if g.cfg.Mailer == nil {
		return nil
	}
	m, err := mail.PickupMail(p.Email, g.Invitation(p))
	if err != nil {
		return fmt.Errorf("%w: pick-up mail: %v", jobs.ErrPermanent, err)
	}
	if once {
		_, err = g.cfg.Mailer.EnqueueOnce(ctx, fmt.Sprintf("pickup-code:%d", p.ID), m)
	} else {
		_, err = g.cfg.Mailer.Enqueue(ctx, m)
	}
	return err
}

// ResendCode queues the pick-up mail of a packaged registration again.
func (g *Gateway) ResendCode(ctx context.Context, pickupID int64) error {
	p, err := g.store.Pickup(ctx, pickupID)
	if err != nil {
		return err
	}
	if p.State != PickupMailed && p.State != PickupPackaged {
		return fmt.Errorf("%w: pick-up %d is %s, no package to send", ErrNotDeliverable, p.ID, p.State)
	}
	return g.mailCode(ctx, p, false)
}

// PickupLetter writes the printable pick-up letter of a registration.
func (g *Gateway) PickupLetter(ctx context.Context, w io.Writer, pickupID int64) error {
	p, err := g.store.Pickup(ctx, pickupID)
	if err != nil {
		return err
	}
	return mail.WritePickupLetter(w, g.Invitation(p))
}

// DeletePickup withdraws a registration and, when its package exists and
// was not picked up, the package.
func (g *Gateway) DeletePickup(ctx context.Context, pickupID int64) error {
	p, err := g.store.Pickup(ctx, pickupID)
	if err != nil {
		return err
	}
	if p.State == PickupPackaged || p.State == PickupMailed || p.State == PickupCreating {
		if err := g.platform.DeletePendingConnectPackage(ctx, p.IdentityCode, ""); err != nil {
			return fmt.Errorf("gateway: delete pending package: %w", err)
		}
	}
	p.State, p.AnswerSealed = PickupDeleted, nil
	return g.store.UpdatePickup(ctx, p)
}

// ConnectInvite is a Patient Connect invitation made by staff.
type ConnectInvite struct {
	PatientID, IssuerOfPatientID string
	FriendlyName, Email          string
	Question, Answer             string
}

// InvitePatient creates a Patient Connect request for the patient and
// mails its code; once the patient accepts, their studies go to the
// record they chose.
func (g *Gateway) InvitePatient(ctx context.Context, inv ConnectInvite) (string, error) {
	r := PickupRequest{PatientID: inv.PatientID, Email: inv.Email, FriendlyName: inv.FriendlyName, Question: inv.Question, Answer: inv.Answer}
	if err := r.validate(); err != nil {
		return "", err
	}
	code, err := g.platform.CreateConnectRequest(ctx, r.FriendlyName, r.Question, inv.Answer,
		ExternalID(r.PatientID, strings.TrimSpace(inv.IssuerOfPatientID)), "")
	if err != nil {
		return "", err
	}
	if g.cfg.Mailer != nil {
		m, err := mail.ConnectMail(r.Email, mail.Invitation{FriendlyName: r.FriendlyName, IdentityCode: code,
			PublicURL: g.cfg.PublicURL, Expires: g.cfg.Now().Add(g.cfg.PackageTTL), Institution: g.cfg.Institution})
		if err != nil {
			return code, err
		}
		if _, err := g.cfg.Mailer.EnqueueOnce(ctx, "connect-invite:"+code, m); err != nil {
			return code, err
		}
	}
	return code, nil
}

// connectPollOverlap is how far before the last authorization seen a poll
// asks again.
const connectPollOverlap = 10 * time.Minute

// PollConnect takes the Patient Connect requests patients authorized since
// the last poll and links their studies. Run calls it every ConnectPoll.
func (g *Gateway) PollConnect(ctx context.Context) error {
	const key = "connect.since"
	var since time.Time
	if b, err := g.store.Setting(ctx, key); err == nil {
		since, _ = time.Parse(time.RFC3339Nano, string(b))
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Ask again for a margin before the last authorization seen: the
	// platform's clock and commit order need not match ours, and linking
	// the same request twice changes nothing.
	from := since
	if !from.IsZero() {
		from = from.Add(-connectPollOverlap)
	}
	reqs, err := g.platform.GetAuthorizedConnectRequests(ctx, from)
	if err != nil {
		return err
	}
	latest := since
	for _, r := range reqs {
		if err := g.LinkPatient(ctx, store.PatientLink{ExternalID: r.ExternalID, PersonID: r.PersonID, RecordID: r.RecordID, AuthorizedAt: r.Authorized}); err != nil {
			return err
		}
		if r.Authorized.After(latest) {
			latest = r.Authorized
		}
	}
	if latest.After(since) {
		return g.store.PutSetting(ctx, key, []byte(latest.UTC().Format(time.RFC3339Nano)))
	}
	return nil
}
