//go:build !linux && !darwin

package resptest

// RaiseFileLimit does nothing here: the limit is left to the operator.
func RaiseFileLimit(need uint64) error { return nil }
