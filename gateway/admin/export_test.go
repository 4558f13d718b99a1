package admin

import "sync/atomic"

// CountPasswordChecks makes s count the password verifications (argon2
// runs) of its sign-ins. Call it before the first request.
func CountPasswordChecks(s *Server) *atomic.Int64 {
	n := new(atomic.Int64)
	check := s.checkPassword
	s.checkPassword = func(hash, password string) (bool, error) {
		n.Add(1)
		return check(hash, password)
	}
	return n
}
