//go:build !windows

package main

import "syscall"

type syscallStatfs struct{ syscall.Statfs_t }

func statfs(path string, st *syscallStatfs) error { return syscall.Statfs(path, &st.Statfs_t) }

func (st *syscallStatfs) free() int64 { return int64(st.Bavail) * int64(st.Bsize) }
