//go:build !unix

package regularfile

import "os"

// openNonBlocking opens path for reading. Outside Unix no file-system entry
// makes an open wait for another process, so no flag is needed.
func openNonBlocking(path string) (*os.File, error) {
	return os.Open(path)
}
