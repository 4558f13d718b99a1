package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"dicomgate/gateway/mail"
	"dicomgate/gateway/store"
)

type outboxView struct {
	page
	Available bool
	Records   []mail.Record
}

func (s *Server) outbox(c *gin.Context) {
	v := outboxView{page: s.pageFor(c, "outbox"), Available: s.cfg.Outbox != nil}
	if v.Available {
		var err error
		if v.Records, err = s.cfg.Outbox.List(c.Request.Context(), 200); err != nil {
			s.fail(c, err)
			return
		}
		// Recipients are patients' addresses.
		if err := s.audit(c, "view-outbox", "", "", fmt.Sprintf("%d messages", len(v.Records))); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.render(c, http.StatusOK, "outbox", v)
}

type usersView struct {
	page
	Users    []store.AdminUser
	Errors   map[string]string
	Username string
	Role     string
}

func (s *Server) loadUsers(c *gin.Context) (*usersView, error) {
	us, err := s.db.AdminUsers(c.Request.Context())
	if err != nil {
		return nil, err
	}
	return &usersView{page: s.pageFor(c, "users"), Users: us, Errors: map[string]string{}, Role: string(store.RoleStaff)}, nil
}

func (s *Server) users(c *gin.Context) {
	v, err := s.loadUsers(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "users", v)
}

func (s *Server) createUser(c *gin.Context) {
	v, err := s.loadUsers(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	v.Username, v.Role = strings.TrimSpace(c.PostForm("username")), c.PostForm("role")
	if msg := validUsername(v.Username); msg != "" {
		v.Errors["username"] = msg
	}
	if !store.AdminRole(v.Role).Valid() {
		v.Errors["role"] = "Choose admin or staff."
	}
	if msg := validPassword(c.PostForm("password"), c.PostForm("password2")); msg != "" {
		v.Errors["password"] = msg
	}
	if len(v.Errors) > 0 {
		s.render(c, http.StatusUnprocessableEntity, "users", v)
		return
	}
	u, err := CreateUser(c.Request.Context(), s.db, v.Username, store.AdminRole(v.Role), c.PostForm("password"), s.cfg.Argon2, s.cfg.Now())
	if errors.Is(err, store.ErrConflict) {
		v.Errors["username"] = "This user name is taken."
		s.render(c, http.StatusUnprocessableEntity, "users", v)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.audit(c, "user-created", "", "", fmt.Sprintf("%s (%s)", u.Username, u.Role)); err != nil {
		s.fail(c, err)
		return
	}
	s.redirect(c, "/users", fmt.Sprintf("User %s created.", u.Username))
}

func (s *Server) setUserDisabled(disabled bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil {
			s.errorPage(c, http.StatusNotFound, "No such user.")
			return
		}
		if id == sessionOf(c).user.ID {
			s.errorPage(c, http.StatusConflict, "You cannot disable your own account.")
			return
		}
		u, err := s.db.AdminUser(ctx, id)
		if err != nil {
			s.fail(c, err)
			return
		}
		u.Disabled, u.UpdatedAt = disabled, s.cfg.Now()
		if err := s.db.UpdateAdminUser(ctx, u); err != nil {
			s.fail(c, err)
			return
		}
		action := "user-enabled"
		if disabled {
			action = "user-disabled"
			if err := s.db.DeleteAdminSessions(ctx, u.ID); err != nil {
				s.fail(c, err)
				return
			}
		}
		if err := s.audit(c, action, "", "", u.Username); err != nil {
			s.fail(c, err)
			return
		}
		s.redirect(c, "/users", fmt.Sprintf("User %s %s.", u.Username, strings.TrimPrefix(action, "user-")))
	}
}

type auditView struct {
	page
	Entries  []store.AuditEntry
	StudyUID string
	Username string
}

func (s *Server) auditLog(c *gin.Context) {
	v := auditView{page: s.pageFor(c, "audit"), StudyUID: c.Query("study"), Username: c.Query("user")}
	if len(v.StudyUID) > maxUIDLen || len(v.Username) > maxUsernameLen {
		s.errorPage(c, http.StatusBadRequest, "Filter too long.")
		return
	}
	var err error
	if v.Entries, err = s.db.Audit(c.Request.Context(), store.AuditFilter{StudyUID: v.StudyUID, Username: v.Username, Limit: 500}); err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "audit", v)
}
