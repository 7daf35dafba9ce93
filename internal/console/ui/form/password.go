package form

import "github.com/azen-sh/gateway/internal/console"

// Password reads the password form; the new password is typed twice.
func Password(s *State) (console.ChangePasswordInput, bool) {
	in := console.ChangePasswordInput{CurrentPassword: s.Value("currentPassword"), NewPassword: s.Value("newPassword")}
	if s.Value("confirmPassword") != in.NewPassword {
		s.Fail("confirmPassword", "does not match the new password")
		return in, false
	}
	return in, true
}
