package actors

import "fmt"

// ErrorKind says what sort of failure an actor reported, so the API can map
// it to a status without parsing text.
type ErrorKind int

const (
	// Failed is an operation that was tried and did not work.
	Failed ErrorKind = iota
	// NotFound is a name no service has.
	NotFound
	// Invalid is input that can never work as given.
	Invalid
	// Conflict is an operation the current state does not allow.
	Conflict
)

// Error is the answer of an actor to a command it could not carry out. Its
// text says what happened and what to do next.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func noSuchService(name string) *Error {
	return errorf(NotFound, "no service named %q on this node (see `fungi service list`)", name)
}
