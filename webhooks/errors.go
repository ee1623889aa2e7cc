package webhooks

import "errors"

// ErrMalformed is wrapped by every parse error of this package: the request cannot be read
// as what its route expects, and the carrier sending it again will not help.
var ErrMalformed = errors.New("webhooks: malformed request")

// FormError names the field of a carrier request that is missing or unreadable. It never
// quotes the value: values are untrusted, may be long, and end up in logs.
type FormError struct {
	Field  string
	Reason string
}

func (e *FormError) Error() string {
	return "webhooks: field " + e.Field + ": " + e.Reason
}

// Unwrap lets handlers map every FormError to 400 through errors.Is(err, ErrMalformed).
func (e *FormError) Unwrap() error { return ErrMalformed }
