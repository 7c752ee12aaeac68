package registry

import (
	"errors"
	"io"
)

var errUnexpectedEOF = io.ErrUnexpectedEOF

// isEOF matches a connection closed mid-answer, which Go reports as io.EOF
// wrapped in a url.Error.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
