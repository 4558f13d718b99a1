// Package provision sets up what the platform's XML API relies on but
// does not itself create: applications with their certificates, persons
// (with argon2id password hashes), their records, and applications'
// authorizations on records. The `dicomgate platform app|record` commands
// and `dicomgate serve` (BootstrapApp) use it; Patient Connect and the
// patient pages will create records and authorizations through it too.
package provision

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"dicomgate/platform/appcert"
	"dicomgate/platform/store"
)

// Relationships of a record to the person who holds it.
const (
	RelationshipSelf  = "self"
	RelationshipChild = "child"
	RelationshipOther = "other"
)

// RegisterApp registers a new application with its certificate.
func RegisterApp(ctx context.Context, st store.Store, name string, cert *x509.Certificate) (store.App, error) {
	if strings.TrimSpace(name) == "" {
		return store.App{}, errors.New("provision: application name is empty")
	}
	a := store.App{ID: uuid.NewString(), Name: name, Created: time.Now().UTC()}
	if err := st.CreateApp(ctx, a); err != nil {
		return store.App{}, err
	}
	if err := AddCert(ctx, st, a.ID, cert); err != nil {
		return store.App{}, err
	}
	return a, nil
}

// AddCert registers another certificate for an existing application (e.g.
// an imported one, or a rolled-over key). Adding the same one twice is no error.
func AddCert(ctx context.Context, st store.Store, appID string, cert *x509.Certificate) error {
	if _, err := st.GetApp(ctx, appID); err != nil {
		return err
	}
	err := st.AddAppCert(ctx, store.AppCert{AppID: appID, Thumbprint: appcert.Thumbprint(cert), DER: cert.Raw, Added: time.Now().UTC()})
	if errors.Is(err, store.ErrExists) {
		return nil
	}
	return err
}

// BootstrapApp makes sure dir holds credentials of an application named
// name that is registered in st, creating key, certificate and registration
// as needed. Running it again with the same dir and store changes nothing,
// so `dicomgate serve` calls it on every start for the gateway's own app.
func BootstrapApp(ctx context.Context, st store.Store, dir, name string) (*appcert.Credentials, error) {
	creds, err := appcert.Load(dir)
	switch {
	case errors.Is(err, appcert.ErrNoCredentials):
		key, cert, err := appcert.Generate(name, 10*365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		creds = &appcert.Credentials{AppID: uuid.NewString(), Key: key, Cert: cert}
		if err := appcert.Save(dir, creds); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if _, err := st.GetApp(ctx, creds.AppID); errors.Is(err, store.ErrNotFound) {
		if err := st.CreateApp(ctx, store.App{ID: creds.AppID, Name: name, Created: time.Now().UTC()}); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if err := AddCert(ctx, st, creds.AppID, creds.Cert); err != nil {
		return nil, err
	}
	return creds, nil
}

// CreatePerson creates a person with a login and password (stored as an
// argon2id hash only).
func CreatePerson(ctx context.Context, st store.Store, login, name, password string) (store.Person, error) {
	login = strings.TrimSpace(login)
	if login == "" {
		return store.Person{}, errors.New("provision: login is empty")
	}
	if len(password) < 8 {
		return store.Person{}, errors.New("provision: password shorter than 8 characters")
	}
	p := store.Person{ID: uuid.NewString(), Login: login, Name: name, PasswordHash: HashPassword(password), Created: time.Now().UTC()}
	if err := st.CreatePerson(ctx, p); err != nil {
		return store.Person{}, err
	}
	return p, nil
}

// CreateRecord creates a record held by personID.
func CreateRecord(ctx context.Context, st store.Store, personID, name, relationship string) (store.Record, error) {
	switch relationship {
	case RelationshipSelf, RelationshipChild, RelationshipOther:
	default:
		return store.Record{}, fmt.Errorf("provision: relationship %q is not self, child or other", relationship)
	}
	if _, err := st.GetPerson(ctx, personID); err != nil {
		return store.Record{}, err
	}
	r := store.Record{ID: uuid.NewString(), PersonID: personID, Name: name, Relationship: relationship, Created: time.Now().UTC()}
	if err := st.CreateRecord(ctx, r); err != nil {
		return store.Record{}, err
	}
	return r, nil
}

// Authorize lets appID read and write recordID.
func Authorize(ctx context.Context, st store.Store, appID, recordID string) error {
	if _, err := st.GetApp(ctx, appID); err != nil {
		return err
	}
	if _, err := st.GetRecord(ctx, recordID); err != nil {
		return err
	}
	return st.Authorize(ctx, store.Authorization{AppID: appID, RecordID: recordID, Granted: time.Now().UTC()})
}

// argon2id parameters: OWASP's first recommendation (19 MiB, 2 passes, 1
// lane), which keeps a login within the platform's 64 MiB memory budget.
const (
	argonTime    = 2
	argonMemory  = 19 << 10
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the PHC-format argon2id hash of password.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt) // never fails: crypto/rand crashes the program instead
	return encodeHash(salt, argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen))
}

// DummyHash returns a hash in HashPassword's format that no password
// matches (random salt and key): checking an unknown login against it
// costs what a real check does, and making it runs no argon2.
func DummyHash() string {
	salt, key := make([]byte, 16), make([]byte, argonKeyLen)
	rand.Read(salt)
	rand.Read(key)
	return encodeHash(salt, key)
}

// encodeHash writes salt and key in the PHC string format with the
// package's argon2id parameters.
func encodeHash(salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches a HashPassword hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}
