package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"dicomgate/platform/blob"
	"dicomgate/platform/store"
	"dicomgate/platform/thing"
	"dicomgate/platform/wire"
)

// maxKeyValue bounds an indexed data-xml value (longer ones are not indexed).
const maxKeyValue = 255

var guidRE = regexp.MustCompile(`^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$`)

// putThings is PutThings v2: new things (no thing-id) and updates (thing-id
// with the version stamp being replaced), written all or none.
func (s *Server) putThings(ctx context.Context, c *Call) (any, error) {
	var req wire.PutThingsRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	if len(req.Things) == 0 {
		return nil, wire.Errorf(wire.InvalidXML, "PutThings info has no thing")
	}
	if len(req.Things) > s.cfg.MaxThingsPerPut {
		return nil, wire.Errorf(wire.TooManyThingsSpecified, "%d things in one PutThings, at most %d", len(req.Things), s.cfg.MaxThingsPerPut)
	}
	var (
		writes []store.ThingWrite
		keys   []thing.Key
	)
	for i, t := range req.Things {
		w, err := s.prepareThing(ctx, c, t)
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				return nil, wire.Errorf(we.Code, "thing %d: %s", i+1, we.Message)
			}
			return nil, err
		}
		writes = append(writes, w)
		keys = append(keys, thing.Key{ID: w.Thing.ID, VersionStamp: w.Thing.VersionStamp})
	}
	if err := s.st.PutThings(ctx, writes); err != nil {
		return nil, err
	}
	return &wire.PutThingsResponse{Keys: keys}, nil
}

func (s *Server) prepareThing(ctx context.Context, c *Call, t *thing.Thing) (store.ThingWrite, error) {
	var w store.ThingWrite
	if t.Type == nil || !guidRE.MatchString(strings.TrimSpace(t.Type.ID)) {
		return w, wire.Errorf(wire.InvalidThingType, "type-id missing or not a guid")
	}
	st := store.Thing{
		RecordID:     c.RecordID,
		ID:           uuid.NewString(),
		VersionStamp: uuid.NewString(),
		TypeID:       strings.ToLower(strings.TrimSpace(t.Type.ID)),
		State:        thing.StateActive,
		Created:      c.Now,
		CreatedApp:   c.AppID,
		Updated:      c.Now,
		UpdatedApp:   c.AppID,
		Tags:         t.Tags,
		EffDate:      c.Now,
	}
	if t.State != "" && t.State != thing.StateActive {
		return w, wire.Errorf(wire.InvalidThingState, "thing-state %q cannot be written (use RemoveThings)", t.State)
	}
	if t.Flags != nil {
		st.Flags = *t.Flags
	}
	if t.EffDate != nil {
		st.EffDate = t.EffDate.UTC()
	}
	var current *store.Thing
	if t.Key != nil && strings.TrimSpace(t.Key.ID) != "" {
		id := strings.ToLower(strings.TrimSpace(t.Key.ID))
		if t.Key.VersionStamp == "" {
			return w, wire.Errorf(wire.VersionStampMissing, "update of thing %s has no version-stamp", id)
		}
		found, err := s.st.QueryThings(ctx, store.ThingQuery{RecordID: c.RecordID, IDs: []string{id}})
		if err != nil {
			return w, err
		}
		if len(found) == 0 {
			return w, wire.Errorf(wire.InvalidThing, "no thing %s in record %s", id, c.RecordID)
		}
		current = &found[0]
		if current.VersionStamp != t.Key.VersionStamp {
			return w, wire.Errorf(wire.VersionStampMismatch, "thing %s is at version %s, the update names %s", id, current.VersionStamp, t.Key.VersionStamp)
		}
		if current.State != thing.StateActive {
			return w, wire.Errorf(wire.InvalidThingState, "thing %s is %s", id, current.State)
		}
		st.ID, st.Created, st.CreatedApp = id, current.Created, current.CreatedApp
		w.PrevVersion = current.VersionStamp
	}
	var data bytes.Buffer
	for i := range t.Data {
		t.Data[i].WriteElement(&data)
	}
	st.DataXML = data.Bytes()
	st.Keys = indexKeys(t.TypeSpecific())

	blobs, err := s.resolveBlobs(ctx, c, t, current)
	if err != nil {
		return w, err
	}
	st.Blobs = blobs
	if t.SignatureInfo != nil {
		if _, err := thing.Verify(t); err != nil {
			return w, wire.Errorf(wire.BadSig, "%v", err)
		}
		b, err := xml.Marshal(struct {
			XMLName xml.Name `xml:"signature-info"`
			*thing.SignatureInfo
		}{SignatureInfo: t.SignatureInfo})
		if err != nil {
			return w, err
		}
		st.SignatureInfo = b
	}
	w.Thing = st
	return w, nil
}

// indexKeys returns the leaf children of the type's root element with short
// text, keyed "root/child": what the optimized single-predicate XPath
// filter (/thing/data-xml/root/child[.="v"]) looks up.
func indexKeys(inner []byte) map[string]string {
	d := xml.NewDecoder(bytes.NewReader(inner))
	keys := map[string]string{}
	var (
		depth    int
		root     string
		child    string
		text     strings.Builder
		hasChild bool
	)
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				if root != "" {
					return keys // only the first root element (common follows)
				}
				root = t.Name.Local
			case 2:
				child, hasChild = t.Name.Local, false
				text.Reset()
			case 3:
				hasChild = true
			}
		case xml.CharData:
			if depth == 2 && text.Len() <= maxKeyValue {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 2 && !hasChild {
				v := strings.TrimSpace(text.String())
				if _, dup := keys[root+"/"+child]; !dup && v != "" && len(v) <= maxKeyValue {
					keys[root+"/"+child] = v
				}
			}
			depth--
			if depth == 0 && root != "" {
				return keys
			}
		}
	}
	return keys
}

// resolveBlobs turns the thing's blob-payload into stored blob references:
// streamed blobs by their URL (checked complete, of this record, and
// matching the thing's content-length and hash-info), inline blobs written
// to files, removed blobs (content-length 0, no data) dropped, and blobs
// sent as information only kept from the current version.
func (s *Server) resolveBlobs(ctx context.Context, c *Call, t *thing.Thing, current *store.Thing) ([]store.ThingBlob, error) {
	if t.BlobPayload == nil {
		return nil, nil
	}
	var (
		out   []store.ThingBlob
		names = map[string]bool{}
		kept  []thing.Blob
	)
	for i := range t.BlobPayload.Blobs {
		b := &t.BlobPayload.Blobs[i]
		name := b.Info.Name
		if names[name] {
			return nil, wire.Errorf(wire.InvalidThing, "two blobs named %q", name)
		}
		names[name] = true
		var (
			sb  store.Blob
			err error
		)
		switch {
		case b.RefURL != "":
			if sb, err = s.streamedBlob(ctx, c, b.RefURL); err == nil {
				err = checkBlob(b, sb)
			}
		case b.Base64Data != "":
			sb, err = s.inlineBlob(ctx, c, b)
		case b.Length() == 0:
			continue // a removed blob
		default:
			prev := findBlob(current, name)
			if prev == nil {
				return nil, wire.Errorf(wire.InvalidThing, "blob %q has neither base64data nor blob-ref-url", name)
			}
			if sb, err = s.st.GetBlob(ctx, prev.BlobID); err == nil {
				err = checkBlob(b, sb)
			}
		}
		if err != nil {
			return nil, err
		}
		// The thing carries the server's view of the blob from now on.
		b.Base64Data, b.RefURL = "", ""
		n := sb.Size
		b.ContentLength = &n
		b.Info.HashInfo = hashInfoOf(sb)
		hi, err := xml.Marshal(struct {
			XMLName xml.Name `xml:"hash-info"`
			*thing.HashInfo
		}{HashInfo: b.Info.HashInfo})
		if err != nil {
			return nil, err
		}
		tb := store.ThingBlob{Name: name, ContentType: b.Info.ContentType, BlobID: sb.ID, ContentLength: sb.Size, HashInfo: hi}
		out = append(out, tb)
		kept = append(kept, *b)
	}
	t.BlobPayload.Blobs = kept
	return out, nil
}

func findBlob(t *store.Thing, name string) *store.ThingBlob {
	if t == nil {
		return nil
	}
	for i := range t.Blobs {
		if t.Blobs[i].Name == name {
			return &t.Blobs[i]
		}
	}
	return nil
}

func hashInfoOf(b store.Blob) *thing.HashInfo {
	return thing.SHA256BlockInfo(b.BlockSize, base64.StdEncoding.EncodeToString(b.Hash))
}

// checkBlob refuses a blob whose declared content-length or hash-info
// differs from what the server received.
func checkBlob(b *thing.Blob, sb store.Blob) error {
	name := b.Info.Name
	if n := b.Length(); n >= 0 && n != sb.Size {
		return wire.Errorf(wire.InvalidThing, "blob %q: content-length %d, but %d bytes were received", name, n, sb.Size)
	}
	hi := b.Info.HashInfo
	if hi == nil {
		return nil
	}
	if hi.Algorithm != thing.HashAlgorithmSHA256Block {
		return wire.Errorf(wire.InvalidBlobHashAlgorithm, "blob %q: hash algorithm %q (want %s)", name, hi.Algorithm, thing.HashAlgorithmSHA256Block)
	}
	if bs := hi.BlockSize(); bs != 0 && bs != sb.BlockSize {
		return wire.Errorf(wire.BlobHashBlockSizeMismatch, "blob %q: hash block size %d, the blob was hashed with %d", name, bs, sb.BlockSize)
	}
	want, err := base64.StdEncoding.DecodeString(strings.TrimSpace(hi.Hash))
	if err != nil || !bytes.Equal(want, sb.Hash) {
		return wire.Errorf(wire.InvalidBlobHash, "blob %q: hash-info does not match the received bytes", name)
	}
	return nil
}

// streamedBlob resolves a blob-ref-url: a write URL from BeginPutBlob or a
// read URL from GetThings (an update sending the thing back), of this record.
func (s *Server) streamedBlob(ctx context.Context, c *Call, ref string) (store.Blob, error) {
	u, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return store.Blob{}, wire.Errorf(wire.InvalidBlobRefURL, "blob-ref-url is not a URL")
	}
	tok, err := s.parseToken(u.Query().Get(tokenParam), c.Now)
	if err != nil {
		return store.Blob{}, wire.Errorf(wire.InvalidBlobRefURL, "blob-ref-url: %v", err)
	}
	if tok.RecordID != c.RecordID {
		return store.Blob{}, wire.Errorf(wire.InvalidBlobRefURL, "blob-ref-url belongs to another record")
	}
	b, err := s.st.GetBlob(ctx, tok.BlobID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Blob{}, wire.Errorf(wire.InvalidBlobRefURL, "blob-ref-url names no blob")
	} else if err != nil {
		return store.Blob{}, err
	}
	if b.State != store.BlobComplete {
		return store.Blob{}, wire.Errorf(wire.BlobTokenNotCompleted, "blob was not completed (x-hv-blob-complete)")
	}
	return b, nil
}

// inlineBlob writes a base64data blob to a file and records it complete,
// hashed with the hash-info's block size or the SDK's 2 MiB default.
func (s *Server) inlineBlob(ctx context.Context, c *Call, b *thing.Blob) (store.Blob, error) {
	bs, err := s.hashBlockSize(b, blob.DefaultBlockSize)
	if err != nil {
		return store.Blob{}, err
	}
	data := base64.NewDecoder(base64.StdEncoding, strings.NewReader(strings.Join(strings.Fields(b.Base64Data), "")))
	sb, err := s.storeBlob(ctx, c, b, bs, data)
	var corrupt base64.CorruptInputError
	if errors.As(err, &corrupt) || errors.Is(err, io.ErrUnexpectedEOF) {
		return store.Blob{}, wire.Errorf(wire.InvalidXML, "blob %q: base64data is not base64", b.Info.Name)
	}
	return sb, err
}

// hashBlockSize returns the SHA256Block block size the hash-info of b
// names, or def when it names none.
func (s *Server) hashBlockSize(b *thing.Blob, def int64) (int64, error) {
	bs := b.Info.HashInfo.BlockSize()
	if bs <= 0 {
		return def, nil
	}
	if bs > s.cfg.MaxRequestBytes {
		return 0, wire.Errorf(wire.BlobHashBlockSizeMismatch, "blob %q: block size %d too large", b.Info.Name, bs)
	}
	return bs, nil
}

// storeBlob writes src into a new complete blob of the call's record,
// hashing it (SHA256Block, blocks of bs bytes) as it goes, and records the
// blob once its file is synced and it matches b's content-length and
// hash-info. On failure the file is removed again.
func (s *Server) storeBlob(ctx context.Context, c *Call, b *thing.Blob, bs int64, src io.Reader) (store.Blob, error) {
	id := uuid.NewString()
	if err := s.createBlobFile(id); err != nil {
		return store.Blob{}, err
	}
	sb, err := s.fillBlob(ctx, c, id, b, bs, src)
	if err != nil {
		os.Remove(s.blobPath(id))
	}
	return sb, err
}

func (s *Server) fillBlob(ctx context.Context, c *Call, id string, b *thing.Blob, bs int64, src io.Reader) (store.Blob, error) {
	f, err := os.OpenFile(s.blobPath(id), os.O_WRONLY, 0)
	if err != nil {
		return store.Blob{}, err
	}
	h := blob.NewHasher(bs)
	buf := s.pieces.Get().(*[]byte)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), src, *buf)
	s.pieces.Put(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return store.Blob{}, err
	}
	sb := store.Blob{ID: id, RecordID: c.RecordID, AppID: c.AppID, State: store.BlobComplete, BlockSize: bs,
		MaxSize: n, Total: n, Size: n, Hash: h.Sum(nil), Created: c.Now, Completed: c.Now}
	if err := checkBlob(b, sb); err != nil {
		return store.Blob{}, err
	}
	return sb, s.st.CreateBlob(ctx, sb)
}

// removeThings is RemoveThings: each named thing, at the named version,
// becomes Deleted (and so invisible to default queries).
func (s *Server) removeThings(ctx context.Context, c *Call) (any, error) {
	var req wire.RemoveThingsRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	if len(req.Keys) == 0 {
		return nil, wire.Errorf(wire.InvalidXML, "RemoveThings info has no thing-id")
	}
	var writes []store.ThingWrite
	for _, k := range req.Keys {
		id := strings.ToLower(strings.TrimSpace(k.ID))
		found, err := s.st.QueryThings(ctx, store.ThingQuery{RecordID: c.RecordID, IDs: []string{id}})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 || found[0].State != thing.StateActive {
			return nil, wire.Errorf(wire.InvalidThing, "no active thing %s in record %s", id, c.RecordID)
		}
		t := found[0]
		if t.VersionStamp != k.VersionStamp {
			return nil, wire.Errorf(wire.VersionStampMismatch, "thing %s is at version %s, not %s", id, t.VersionStamp, k.VersionStamp)
		}
		t.State, t.Updated, t.UpdatedApp, t.VersionStamp = thing.StateDeleted, c.Now, c.AppID, uuid.NewString()
		writes = append(writes, store.ThingWrite{Thing: t, PrevVersion: k.VersionStamp})
	}
	return nil, s.st.PutThings(ctx, writes)
}

// xpathRE is the XPath form dicomgate evaluates: one string-equality
// predicate on a leaf child of the type's root element, as the medical
// imaging seed uses on study-instance-uid.
var xpathRE = regexp.MustCompile(`^\s*/thing/data-xml/([A-Za-z_][\w.\-]*)/([A-Za-z_][\w.\-]*)\s*\[\s*\.\s*=\s*(?:"([^"]*)"|'([^']*)')\s*\]\s*$`)

func parseXPath(x string) (path, value string, err error) {
	m := xpathRE.FindStringSubmatch(x)
	if m == nil {
		return "", "", wire.Errorf(wire.InvalidFilter, "xpath %q not supported: use /thing/data-xml/ROOT/CHILD[.=\"value\"]", x)
	}
	return m[1] + "/" + m[2], m[3] + m[4], nil
}

// getThings is GetThings v3.
func (s *Server) getThings(ctx context.Context, c *Call) (any, error) {
	var req wire.GetThingsRequest
	if err := c.DecodeInfo(&req); err != nil {
		return nil, err
	}
	if len(req.Groups) == 0 {
		return nil, wire.Errorf(wire.InvalidXML, "GetThings info has no group")
	}
	if len(req.Groups) > s.cfg.MaxGroups {
		return nil, wire.Errorf(wire.TooManyGroupsInQuery, "%d groups, at most %d", len(req.Groups), s.cfg.MaxGroups)
	}
	resp := &wire.GetThingsResponse{}
	for i := range req.Groups {
		g, err := s.queryGroup(ctx, c, &req.Groups[i])
		if err != nil {
			return nil, err
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func (s *Server) queryGroup(ctx context.Context, c *Call, g *wire.ThingRequestGroup) (wire.ThingResponseGroup, error) {
	out := wire.ThingResponseGroup{Name: g.Name}
	if len(g.Other) > 0 {
		return out, wire.Errorf(wire.InvalidFilter, "group element %q not supported", g.Other[0].XMLName.Local)
	}
	if len(g.ClientThingIDs) > 0 {
		return out, wire.Errorf(wire.InvalidFilter, "client-thing-id selection not supported")
	}
	if err := checkFormat(&g.Format); err != nil {
		return out, err
	}
	ids := append([]string(nil), g.IDs...)
	for _, k := range g.Keys {
		ids = append(ids, k.ID)
	}
	for i := range ids {
		ids[i] = strings.ToLower(strings.TrimSpace(ids[i]))
	}
	maxFull := s.cfg.MaxFullThings
	if g.MaxFull != nil && *g.MaxFull < maxFull {
		maxFull = *g.MaxFull
	}
	total := maxFull + s.cfg.MaxPartialThings
	if g.Max != nil && *g.Max < total {
		total = *g.Max
	}
	if maxFull > total {
		maxFull = total
	}
	filters := g.Filters
	if len(filters) == 0 {
		filters = []wire.ThingFilter{{}}
	}
	var result []store.Thing
	for fi, f := range filters {
		q, post, err := thingQuery(c.RecordID, ids, f)
		if err != nil {
			return out, err
		}
		found, err := s.st.QueryThings(ctx, q)
		if err != nil {
			return out, err
		}
		var kept []store.Thing
		for _, t := range found {
			if post(t) {
				kept = append(kept, t)
			}
		}
		if fi == 0 {
			result = kept
			continue
		}
		in := map[string]bool{}
		for _, t := range kept {
			in[t.ID] = true
		}
		var both []store.Thing
		for _, t := range result {
			if in[t.ID] {
				both = append(both, t)
			}
		}
		result = both
	}
	if len(result) > total {
		result = result[:total]
	}
	names := &auditNames{apps: map[string]string{}}
	for i, t := range result {
		if i < maxFull {
			th, err := s.renderThing(ctx, c, t, &g.Format, names)
			if err != nil {
				return out, err
			}
			out.Things = append(out.Things, th)
			continue
		}
		out.Unprocessed = append(out.Unprocessed, wire.UnprocessedThingKeyInfo{
			Key: thing.Key{ID: t.ID, VersionStamp: t.VersionStamp}, Type: thing.TypeID{ID: t.TypeID}, EffDate: t.EffDate,
		})
	}
	return out, nil
}

func checkFormat(f *wire.ThingFormat) error {
	for _, s := range f.Sections {
		switch s {
		case wire.SectionCore, wire.SectionAudits, wire.SectionEffectivePermissions, wire.SectionDigitalSignatures,
			wire.SectionTags, wire.SectionBlobPayload:
		default:
			return wire.Errorf(wire.InvalidFormat, "section %q unknown", s)
		}
	}
	for _, x := range f.XML {
		if strings.TrimSpace(x) != "" {
			return wire.Errorf(wire.InvalidFormat, "xml transforms (%q) not supported", x)
		}
	}
	if bp := f.BlobPayloadRequest; bp != nil {
		switch bp.BlobFormat.Spec {
		case wire.BlobFormatInformation, wire.BlobFormatInline, wire.BlobFormatStreamed:
		default:
			return wire.Errorf(wire.InvalidFormat, "blob-format-spec %q unknown", bp.BlobFormat.Spec)
		}
	}
	return nil
}

// thingQuery turns a filter into a store query plus the conditions checked
// on each result.
func thingQuery(recordID string, ids []string, f wire.ThingFilter) (store.ThingQuery, func(store.Thing) bool, error) {
	q := store.ThingQuery{RecordID: recordID, IDs: ids}
	if len(f.Other) > 0 {
		return q, nil, wire.Errorf(wire.InvalidFilter, "filter element %q not supported", f.Other[0].XMLName.Local)
	}
	for _, t := range f.TypeIDs {
		t = strings.ToLower(strings.TrimSpace(t))
		if !guidRE.MatchString(t) {
			return q, nil, wire.Errorf(wire.InvalidFilter, "type-id %q is not a guid", t)
		}
		q.TypeIDs = append(q.TypeIDs, t)
	}
	for _, st := range f.States {
		st = strings.TrimSpace(st)
		if st != thing.StateActive && st != thing.StateDeleted {
			return q, nil, wire.Errorf(wire.InvalidFilter, "thing-state %q is not Active or Deleted", st)
		}
		q.States = append(q.States, st)
	}
	if len(q.States) == 0 {
		q.States = []string{thing.StateActive}
	}
	if f.XPath != "" {
		p, v, err := parseXPath(f.XPath)
		if err != nil {
			return q, nil, err
		}
		q.KeyPath, q.KeyValue = p, v
	}
	post := func(t store.Thing) bool {
		if f.EffDateMin != nil && t.EffDate.Before(*f.EffDateMin) {
			return false
		}
		if f.EffDateMax != nil && t.EffDate.After(*f.EffDateMax) {
			return false
		}
		if f.CreatedAppID != "" && !strings.EqualFold(f.CreatedAppID, t.CreatedApp) {
			return false
		}
		if f.UpdatedAppID != "" && !strings.EqualFold(f.UpdatedAppID, t.UpdatedApp) {
			return false
		}
		return true
	}
	return q, post, nil
}

// renderThing builds the thing2 element of a stored thing with the parts the
// format asks for.
func (s *Server) renderThing(ctx context.Context, c *Call, st store.Thing, f *wire.ThingFormat, names *auditNames) (*thing.Thing, error) {
	t := &thing.Thing{
		Key:  &thing.Key{ID: st.ID, VersionStamp: st.VersionStamp},
		Type: &thing.TypeID{ID: st.TypeID},
	}
	if f.Has(wire.SectionCore) {
		t.State = st.State
		flags, eff := st.Flags, st.EffDate
		t.Flags, t.EffDate = &flags, &eff
	}
	if f.Has(wire.SectionAudits) {
		var err error
		if t.Created, err = s.audit(ctx, c, names, st.Created, st.CreatedApp, "Created"); err != nil {
			return nil, err
		}
		if t.Updated, err = s.audit(ctx, c, names, st.Updated, st.UpdatedApp, "Updated"); err != nil {
			return nil, err
		}
	}
	if len(f.XML) > 0 && len(st.DataXML) > 0 {
		var wrap struct {
			Data []thing.DataXML `xml:"data-xml"`
		}
		if err := xml.Unmarshal(append(append([]byte("<d>"), st.DataXML...), "</d>"...), &wrap); err != nil {
			return nil, fmt.Errorf("stored data-xml of thing %s: %w", st.ID, err)
		}
		t.Data = wrap.Data
	}
	if f.Has(wire.SectionBlobPayload) && len(st.Blobs) > 0 {
		bp, err := s.renderBlobs(ctx, c, st, f.BlobPayloadRequest)
		if err != nil {
			return nil, err
		}
		t.BlobPayload = bp
	}
	if f.Has(wire.SectionEffectivePermissions) {
		t.EffPermissions = &thing.EffPermissions{Permissions: []string{"All"}}
	}
	if f.Has(wire.SectionTags) {
		t.Tags = st.Tags
	}
	if f.Has(wire.SectionDigitalSignatures) && len(st.SignatureInfo) > 0 {
		var si thing.SignatureInfo
		if err := xml.Unmarshal(st.SignatureInfo, &si); err != nil {
			return nil, fmt.Errorf("stored signature-info of thing %s: %w", st.ID, err)
		}
		t.SignatureInfo = &si
	}
	return t, nil
}

// auditNames caches, for one GetThings call, the names audits show.
type auditNames struct {
	apps   map[string]string
	person *store.Person
}

func (s *Server) audit(ctx context.Context, c *Call, names *auditNames, at time.Time, appID, action string) (*thing.Audit, error) {
	appName, ok := names.apps[appID]
	if !ok {
		app, err := s.st.GetApp(ctx, appID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		appName = app.Name
		names.apps[appID] = appName
	}
	if names.person == nil {
		rec, err := s.st.GetRecord(ctx, c.RecordID)
		if err != nil {
			return nil, err
		}
		p, err := s.st.GetPerson(ctx, rec.PersonID)
		if err != nil {
			return nil, err
		}
		names.person = &p
	}
	return &thing.Audit{
		Timestamp:   at,
		AppID:       thing.NamedID{ID: appID, Name: appName},
		PersonID:    thing.NamedID{ID: names.person.ID, Name: names.person.Name},
		AuditAction: action,
	}, nil
}

func (s *Server) renderBlobs(ctx context.Context, c *Call, st store.Thing, req *wire.BlobPayloadRequest) (*thing.BlobPayload, error) {
	spec := wire.BlobFormatStreamed
	var only map[string]bool
	if req != nil {
		spec = req.BlobFormat.Spec
		if req.BlobFilters != nil {
			only = map[string]bool{}
			for _, f := range req.BlobFilters.Filters {
				only[f.BlobName] = true
			}
		}
	}
	bp := &thing.BlobPayload{}
	for _, tb := range st.Blobs {
		if only != nil && !only[tb.Name] {
			continue
		}
		b := thing.Blob{Info: thing.BlobInfo{Name: tb.Name, ContentType: tb.ContentType}}
		if len(tb.HashInfo) > 0 {
			var hi thing.HashInfo
			if err := xml.Unmarshal(tb.HashInfo, &hi); err != nil {
				return nil, fmt.Errorf("stored hash-info of thing %s: %w", st.ID, err)
			}
			b.Info.HashInfo = &hi
		}
		n := tb.ContentLength
		b.ContentLength = &n
		switch spec {
		case wire.BlobFormatStreamed:
			b.RefURL = s.readURL(c.RecordID, tb.BlobID, tb.ContentType, c.Now)
		case wire.BlobFormatInline:
			if n > s.cfg.MaxInlineBlobBytes {
				return nil, wire.Errorf(wire.BlobSizeTooLargeForInline, "blob %q has %d bytes, more than %d can be returned inline; ask for streamed", tb.Name, n, s.cfg.MaxInlineBlobBytes)
			}
			data, err := os.ReadFile(s.blobPath(tb.BlobID))
			if err != nil {
				return nil, err
			}
			b.Base64Data = base64.StdEncoding.EncodeToString(data)
		}
		bp.Blobs = append(bp.Blobs, b)
	}
	if len(bp.Blobs) == 0 {
		return nil, nil
	}
	return bp, nil
}
