package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"

	"dicomgate/gateway"
	"dicomgate/gateway/mail"
	"dicomgate/gateway/store"
)

// Drop-off/pick-up (DOPU) packages and Patient Connect invitations, as the
// front desk makes them. Who may: staff and admins register pick-ups,
// invite patients, resend a code mail and print letters (the front desk's
// daily work); only admins delete a pending package, because deleting it
// on the platform cannot be undone and the patient's code stops working.
//
// The secret answer is read from the form, passed to the gateway (which
// seals it) and dropped: it is never echoed into a page, logged or
// audited. The identity code is shown to staff (handing it over is its
// purpose) but audit rows and logs carry only its last group.

// maxAnswerLen bounds a secret answer as typed; the gateway's own limit
// (1024 bytes) gives the field error.
const maxAnswerLen = 4096

// pickupForm is what the pick-up and invitation forms echo back after a
// field error. It has no answer field on purpose.
type pickupForm struct {
	PatientID, Issuer, Accession string
	Email, FriendlyName          string
	Question                     string
}

// formValue reads a form field, trimmed and cut to max bytes (the gateway
// reports lengths over its limits as field errors).
func formValue(c *gin.Context, name string, max int) string {
	v := strings.TrimSpace(c.PostForm(name))
	if len(v) > max {
		v = v[:max]
	}
	return v
}

func readPickupForm(c *gin.Context) pickupForm {
	return pickupForm{
		PatientID: formValue(c, "patient_id", 2*maxField), Issuer: formValue(c, "issuer", 2*maxField),
		Accession: formValue(c, "accession", 2*maxField), Email: formValue(c, "email", 2*maxField),
		FriendlyName: formValue(c, "friendly_name", 2*maxField), Question: formValue(c, "question", 2048),
	}
}

// readAnswer returns the secret answer typed twice; a mismatch is a field
// error on answer2 under prefix.
func readAnswer(c *gin.Context, prefix string, errs map[string]string) string {
	a, again := c.PostForm("answer"), c.PostForm("answer2")
	if len(a) > maxAnswerLen {
		a = a[:maxAnswerLen]
	}
	if a != again {
		errs[prefix+"answer2"] = "The two answers differ; type the same answer twice."
	}
	return a
}

// fieldError turns a gateway field error into a form error under prefix;
// it reports whether err was one.
func fieldError(err error, prefix string, errs map[string]string) bool {
	var fe *gateway.FieldError
	if !errors.As(err, &fe) {
		return false
	}
	msg := fe.Message
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:] + "."
	}
	errs[prefix+fe.Field] = msg
	return true
}

// codeShape is the shape of an identity code (SPEC §6).
var codeShape = regexp.MustCompile(`^[A-Z]{4}(-[A-Z]{4}){4}$`)

// maskCode is what audit rows and logs keep of an identity code: its last
// group, enough to tell codes apart, useless to pick anything up with.
func maskCode(code string) string {
	if i := strings.LastIndexByte(code, '-'); i >= 0 && i+1 < len(code) {
		return "…-" + code[i+1:]
	}
	if code == "" {
		return "none"
	}
	return "…"
}

// pickupActive says whether a registration still stands.
func pickupActive(p *store.Pickup) bool {
	return p != nil && p.State != gateway.PickupDeleted
}

// pickupCan is what the pick-up actions offer for one registration.
type pickupCan struct {
	Resend, Letter, Delete bool
}

func pickupActions(p store.Pickup, isAdmin bool) pickupCan {
	live := pickupActive(&p)
	return pickupCan{
		Resend: p.State == gateway.PickupMailed || p.State == gateway.PickupPackaged,
		Letter: live && p.IdentityCode != "",
		Delete: live && isAdmin,
	}
}

// studyPickup returns the registration of a study: the one it is bound
// to, else the one it would be packaged for; nil when there is none.
func (s *Server) studyPickup(ctx context.Context, st store.Study) (*store.Pickup, error) {
	var (
		p   store.Pickup
		err error
	)
	if st.PickupID != 0 {
		p, err = s.db.Pickup(ctx, st.PickupID)
	} else {
		p, err = s.db.FindPickup(ctx, st.PatientID, st.IssuerOfPatientID, st.AccessionNumber)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// releasable says whether staff may send a study on a way of their choice.
func releasable(st store.StudyState) bool {
	switch st {
	case store.StateHeld, store.StateWaitingPatient, store.StateWaitingPickup, store.StateFailed:
		return true
	}
	return false
}

// createStudyPickup registers a pick-up for the study's patient and
// accession number and sends the study to DOPU.
func (s *Server) createStudyPickup(c *gin.Context) {
	ctx := c.Request.Context()
	st, ok := s.studyOf(c)
	if !ok {
		return
	}
	uid := st.StudyUID
	f := readPickupForm(c)
	f.PatientID, f.Issuer, f.Accession = st.PatientID, st.IssuerOfPatientID, st.AccessionNumber
	errs := map[string]string{}
	answer := readAnswer(c, "pickup.", errs)
	detail := fmt.Sprintf("for %s", f.Email)
	fill := func(v *studyView) { v.PickupForm = f }
	cur, err := s.studyPickup(ctx, st)
	if err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case !releasable(st.State):
		err = fmt.Errorf("%w: the study is %s; a pick-up package can be made for a held, waiting or failed study", gateway.ErrNotDeliverable, stateLabel(st.State))
	case pickupActive(cur):
		err = fmt.Errorf("%w: the study has a pick-up registration already (%s)", store.ErrConflict, cur.State)
	}
	if err != nil || len(errs) > 0 {
		s.studyActionFailed(c, st, "create-pickup", detail, errs, err, fill)
		return
	}
	p, err := s.gw.RegisterPickup(ctx, gateway.PickupRequest{StudyUID: uid, PatientID: f.PatientID, IssuerOfPatientID: f.Issuer,
		AccessionNumber: f.Accession, Email: f.Email, FriendlyName: f.FriendlyName, Question: f.Question, Answer: answer})
	if fieldError(err, "pickup.", errs) {
		s.studyActionFailed(c, st, "create-pickup", detail, errs, nil, fill)
		return
	}
	if p.ID != 0 {
		detail = fmt.Sprintf("pick-up %d for %s, code %s", p.ID, p.Email, maskCode(p.IdentityCode))
	}
	if err != nil {
		s.studyActionFailed(c, st, "create-pickup", detail, errs, err, fill)
		return
	}
	if err := s.audit(c, "create-pickup", uid, st.PatientID, detail); err != nil {
		s.fail(c, err)
		return
	}
	s.redirect(c, "/studies/"+uid, "Pick-up package registered. The code is below; it is mailed to "+p.Email+" once the package is built.")
}

// pickupOf reads the :id parameter and loads the registration.
func (s *Server) pickupOf(c *gin.Context) (store.Pickup, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.errorPage(c, http.StatusNotFound, "No such pick-up registration.")
		return store.Pickup{}, false
	}
	p, err := s.db.Pickup(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return store.Pickup{}, false
	}
	return p, true
}

// backTo is where a pick-up action returns: the page its form was on
// (the study or the patients page).
func backTo(c *gin.Context) string {
	b := c.PostForm("back")
	if b == "/patients" || (strings.HasPrefix(b, "/studies/") && len(b) <= len("/studies/")+maxUIDLen && safeNext(b) == b) {
		return b
	}
	return "/patients"
}

// pickupActionFailed audits a refused pick-up action and answers with its
// status.
func (s *Server) pickupActionFailed(c *gin.Context, name string, p store.Pickup, err error) {
	if code := s.auditRefusal(c, name, p.StudyUID, p.PatientID, fmt.Sprintf("pick-up %d:", p.ID), err); code != 0 {
		s.errorPage(c, code, err.Error())
	}
}

func (s *Server) resendPickup(c *gin.Context) {
	p, ok := s.pickupOf(c)
	if !ok {
		return
	}
	if err := s.gw.ResendCode(c.Request.Context(), p.ID); err != nil {
		s.pickupActionFailed(c, "resend-code", p, err)
		return
	}
	if err := s.audit(c, "resend-code", p.StudyUID, p.PatientID, fmt.Sprintf("pick-up %d to %s, code %s", p.ID, p.Email, maskCode(p.IdentityCode))); err != nil {
		s.fail(c, err)
		return
	}
	s.redirect(c, backTo(c), "The code mail was queued again for "+p.Email+".")
}

func (s *Server) deletePickup(c *gin.Context) {
	p, ok := s.pickupOf(c)
	if !ok {
		return
	}
	if p.State == gateway.PickupDeleted {
		s.pickupActionFailed(c, "delete-pickup", p, fmt.Errorf("%w: the registration is deleted already", store.ErrConflict))
		return
	}
	if err := s.gw.DeletePickup(c.Request.Context(), p.ID); err != nil {
		s.pickupActionFailed(c, "delete-pickup", p, err)
		return
	}
	if err := s.audit(c, "delete-pickup", p.StudyUID, p.PatientID, fmt.Sprintf("pick-up %d (%s), code %s", p.ID, p.State, maskCode(p.IdentityCode))); err != nil {
		s.fail(c, err)
		return
	}
	s.redirect(c, backTo(c), fmt.Sprintf("The pick-up registration for %s was deleted; its code no longer works.", p.FriendlyName))
}

// letterCSP lets the gateway's pick-up letter (a standalone page with its
// own print styles) run nothing but its print button's handler.
var letterCSP = func() string {
	h := sha256.Sum256([]byte("window.print()"))
	return "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-hashes' 'sha256-" +
		base64.StdEncoding.EncodeToString(h[:]) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// pickupLetter is the printable pick-up letter of a registration, the
// alternative to the code mail.
func (s *Server) pickupLetter(c *gin.Context) {
	p, ok := s.pickupOf(c)
	if !ok {
		return
	}
	if p.State == gateway.PickupDeleted || p.IdentityCode == "" {
		s.errorPage(c, http.StatusConflict, "This registration was deleted; its code no longer works.")
		return
	}
	var b bytes.Buffer
	if err := s.gw.PickupLetter(c.Request.Context(), &b, p.ID); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.audit(c, "print-pickup-letter", p.StudyUID, p.PatientID, fmt.Sprintf("pick-up %d, code %s", p.ID, maskCode(p.IdentityCode))); err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Security-Policy", letterCSP)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/html; charset=utf-8", b.Bytes())
}

// registerPickup registers a pick-up before the study arrives (patients
// page).
func (s *Server) registerPickup(c *gin.Context) {
	ctx := c.Request.Context()
	f := readPickupForm(c)
	errs := map[string]string{}
	answer := readAnswer(c, "pickup.", errs)
	fill := func(v *patientsView) { v.PickupForm = f }
	if len(errs) > 0 {
		s.patientsFailed(c, "register-pickup", f.PatientID, "", errs, nil, fill)
		return
	}
	p, err := s.gw.RegisterPickup(ctx, gateway.PickupRequest{PatientID: f.PatientID, IssuerOfPatientID: f.Issuer,
		AccessionNumber: f.Accession, Email: f.Email, FriendlyName: f.FriendlyName, Question: f.Question, Answer: answer})
	if fieldError(err, "pickup.", errs) {
		s.patientsFailed(c, "register-pickup", f.PatientID, "", errs, nil, fill)
		return
	}
	detail := fmt.Sprintf("for %s", f.Email)
	if p.ID != 0 {
		detail = fmt.Sprintf("pick-up %d for %s (accession %q), code %s", p.ID, p.Email, p.AccessionNumber, maskCode(p.IdentityCode))
	}
	if err != nil {
		s.patientsFailed(c, "register-pickup", f.PatientID, detail, errs, err, fill)
		return
	}
	if err := s.audit(c, "register-pickup", p.StudyUID, p.PatientID, detail); err != nil {
		s.fail(c, err)
		return
	}
	// The flash (a cookie) does not carry the code; the list shows it.
	msg := fmt.Sprintf("Pick-up registered for %s; its code is in the list below. It is mailed once the study has arrived and is packaged.", p.FriendlyName)
	if p.StudyUID != "" {
		msg = fmt.Sprintf("Pick-up registered for %s; its code is in the list below. A study of this patient was waiting and is being packaged.", p.FriendlyName)
	}
	s.redirect(c, "/patients", msg)
}

// invitation is the result of a Patient Connect invitation: the code is
// shown once, with a printable letter as the alternative to the mail.
type invitation struct {
	PatientID    string
	FriendlyName string
	Email        string
	Code         string
	// MailError is why the code mail could not be queued.
	MailError string
}

// invitePatient makes a Patient Connect invitation (patients page).
func (s *Server) invitePatient(c *gin.Context) {
	ctx := c.Request.Context()
	f := readPickupForm(c)
	errs := map[string]string{}
	answer := readAnswer(c, "invite.", errs)
	fill := func(v *patientsView) { v.InviteForm = f }
	if len(errs) > 0 {
		s.patientsFailed(c, "invite-patient", f.PatientID, "", errs, nil, fill)
		return
	}
	code, err := s.gw.InvitePatient(ctx, gateway.ConnectInvite{PatientID: f.PatientID, IssuerOfPatientID: f.Issuer,
		FriendlyName: f.FriendlyName, Email: f.Email, Question: f.Question, Answer: answer})
	if fieldError(err, "invite.", errs) {
		s.patientsFailed(c, "invite-patient", f.PatientID, "", errs, nil, fill)
		return
	}
	if err != nil && code == "" {
		s.patientsFailed(c, "invite-patient", f.PatientID, "for "+f.Email, errs, err, fill)
		return
	}
	inv := &invitation{PatientID: f.PatientID, FriendlyName: f.FriendlyName, Email: f.Email, Code: code}
	detail := fmt.Sprintf("patient %s invited, mail to %s, code %s", gateway.ExternalID(f.PatientID, f.Issuer), f.Email, maskCode(code))
	if err != nil {
		// The request exists on the platform; only the mail failed.
		s.log.Error("admin: invitation mail", "err", err)
		inv.MailError = "The invitation exists but its mail could not be queued; print the letter instead."
		detail += "; mail not queued: " + err.Error()
	}
	if err := s.audit(c, "invite-patient", "", f.PatientID, detail); err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.loadPatients(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	v.Invited = inv
	s.render(c, http.StatusOK, "patients", v)
}

// connectLetterView is what the Patient Connect letter shows.
type connectLetterView struct {
	FriendlyName string
	Institution  string
	Code         string
	Link         string
}

// validName says whether a friendly name can go into a letter.
func validName(n string) bool {
	if n == "" || len(n) > maxField {
		return false
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// connectLetter prints the Patient Connect letter of an invitation just
// made: the code is not stored by the gateway, so the invitation page
// posts it back here.
func (s *Server) connectLetter(c *gin.Context) {
	code, name := c.PostForm("code"), strings.TrimSpace(c.PostForm("friendly_name"))
	patientID := formValue(c, "patient_id", maxField)
	if !codeShape.MatchString(code) || !validName(name) {
		s.errorPage(c, http.StatusUnprocessableEntity, "This letter needs the code and name of an invitation; make the invitation again.")
		return
	}
	// The gateway's invitation of a registration carries its public URL
	// and institution; the letter uses those.
	inv := s.gw.Invitation(store.Pickup{FriendlyName: name, IdentityCode: code})
	v := connectLetterView{FriendlyName: name, Institution: inv.Institution, Code: code}
	if link, err := mail.RedirectURL(inv.PublicURL, mail.TargetConnect, code); err == nil {
		v.Link = link
	}
	if err := s.audit(c, "print-connect-letter", "", patientID, "code "+maskCode(code)); err != nil {
		s.fail(c, err)
		return
	}
	s.renderTemplate(c, http.StatusOK, "connectletter", "letter", v)
}

type patientsView struct {
	page
	Links      []store.PatientLink
	Pickups    []pickupRow
	Errors     map[string]string
	Error      string
	PickupForm pickupForm
	InviteForm pickupForm
	Invited    *invitation
}

// pickupRow is a registration with the actions it offers.
type pickupRow struct {
	store.Pickup
	Can pickupCan
}

func (s *Server) loadPatients(c *gin.Context) (*patientsView, error) {
	ctx := c.Request.Context()
	v := &patientsView{page: s.pageFor(c, "patients"), Errors: map[string]string{}}
	var err error
	if v.Links, err = s.db.Links(ctx); err != nil {
		return nil, err
	}
	ps, err := s.db.Pickups(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		v.Pickups = append(v.Pickups, pickupRow{Pickup: p, Can: pickupActions(p, v.IsAdmin)})
	}
	return v, nil
}

func (s *Server) patients(c *gin.Context) {
	v, err := s.loadPatients(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.audit(c, "view-patients", "", "", fmt.Sprintf("%d connected patients, %d pick-up registrations", len(v.Links), len(v.Pickups))); err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "patients", v)
}

// patientsFailed shows the patients page again with the form's errors;
// a refusal by the gateway is audited.
func (s *Server) patientsFailed(c *gin.Context, name, patientID, detail string, errs map[string]string, err error, fill func(*patientsView)) {
	code := s.auditRefusal(c, name, "", patientID, detail, err)
	if code == 0 {
		return
	}
	v, lerr := s.loadPatients(c)
	if lerr != nil {
		s.fail(c, lerr)
		return
	}
	v.Errors = errs
	if err != nil {
		v.Error = err.Error()
	}
	fill(v)
	s.render(c, code, "patients", v)
}
