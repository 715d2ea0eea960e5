package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// noDump keeps the plaintext in serve's memory on the machine's RAM only:
// a core-dump limit of 0 writes no core file, and PR_SET_DUMPABLE 0 makes
// /proc/<pid>/mem and ptrace root's alone, so no other process of the same
// user can read the memory either (proc(5), prctl(2)).
func noDump() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("cannot disable core dumps: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("cannot mark the process non-dumpable: %w", err)
	}
	return nil
}
