package spool_test

import "syscall"

type syscallStat struct{ size, blocks int64 }

func stat(path string, st *syscallStat) error {
	var s syscall.Stat_t
	if err := syscall.Stat(path, &s); err != nil {
		return err
	}
	st.size, st.blocks = s.Size, s.Blocks
	return nil
}
