// Package regularfile reads the files an operator names in configuration:
// the config file itself, password and token files, TLS certificates and
// keys, runbook overrides. A mistyped path must give an error at once, never a
// hang or a process that grows until the kernel kills it: /dev/zero, a FIFO
// with no writer (os.Open blocks on it), a directory or a multi-gigabyte log
// given by mistake are refused before anything is read, and no file is read
// beyond the cap its caller sets.
package regularfile

import (
	"fmt"
	"io"
	"io/fs"
)

// Read returns the contents of the regular file at path, of at most max
// bytes. Anything else is an error that names path: a file that is not
// regular ("/dev/zero is not a regular file (a character device)"), or one
// over max ("big.yml is larger than 4 MiB"). Symbolic links are followed.
//
// It takes no context: the open cannot block (see openNonBlocking), and a
// bounded read of a regular file waits for nobody. Callers that read several
// files check their context between them.
func Read(path string, max int64) ([]byte, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, err // *fs.PathError: "open PATH: no such file or directory"
	}
	defer f.Close()
	// The open file, not the path, is checked, so it cannot be swapped for
	// a FIFO between the check and the read.
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, kind(st.Mode()))
	}
	if st.Size() > max {
		return nil, tooLarge(path, max)
	}
	// The size is only a hint: the file may grow while it is read, and
	// files in /proc say 0.
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, tooLarge(path, max)
	}
	return b, nil
}

func tooLarge(path string, max int64) error {
	return fmt.Errorf("%s is larger than %s", path, size(max))
}

// kind names a file type that is not regular, for the error message.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}

// size writes a cap the way it is set: 4 MiB, 64 KiB, 100 bytes.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
