//go:build !linux

package main

import (
	"fmt"
	"syscall"
)

// noDump writes no core file. Only Linux has PR_SET_DUMPABLE; tyst's
// releases are Linux binaries.
func noDump() error {
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return fmt.Errorf("cannot disable core dumps: %w", err)
	}
	return nil
}
