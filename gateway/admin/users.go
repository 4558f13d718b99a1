package admin

import (
	"context"
	"fmt"
	"time"

	"dicomgate/gateway/store"
)

// CreateUser checks and hashes a new user's password and stores the
// user; `dicomgate admin create-user` and the users page use it.
// store.ErrConflict reports a taken username.
func CreateUser(ctx context.Context, db store.Admin, username string, role store.AdminRole, password string, p Argon2Params, now time.Time) (store.AdminUser, error) {
	if msg := validUsername(username); msg != "" {
		return store.AdminUser{}, fmt.Errorf("admin: user name: %s", msg)
	}
	if !role.Valid() {
		return store.AdminUser{}, fmt.Errorf("admin: role %q is not admin or staff", role)
	}
	if msg := validPassword(password, password); msg != "" {
		return store.AdminUser{}, fmt.Errorf("admin: password: %s", msg)
	}
	hash, err := HashPassword(password, p)
	if err != nil {
		return store.AdminUser{}, err
	}
	return db.CreateAdminUser(ctx, store.AdminUser{Username: username, Role: role, PasswordHash: hash, CreatedAt: now, UpdatedAt: now})
}
