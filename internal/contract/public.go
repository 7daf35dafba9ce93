package contract

import "errors"

// PublicError is an error whose message is written for the client. Handlers
// wrap their 4xx causes with Public so the error writer shows the message;
// any other error is shown only as the generic message of its status.
type PublicError struct {
	Message string
}

func (e *PublicError) Error() string { return e.Message }

// Public returns an error carrying a client-facing message.
func Public(message string) error { return &PublicError{Message: message} }

// PublicMessage returns the client-facing message inside err, if any.
func PublicMessage(err error) (string, bool) {
	var pe *PublicError
	if errors.As(err, &pe) {
		return pe.Message, true
	}
	return "", false
}
