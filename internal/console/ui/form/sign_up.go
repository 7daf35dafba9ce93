package form

import "github.com/azen-sh/gateway/internal/console"

// SignUp reads the sign-up form.
func SignUp(s *State) console.SignUpInput {
	return console.SignUpInput{Email: s.Value("email"), Password: s.Value("password"), Name: s.Value("name")}
}
