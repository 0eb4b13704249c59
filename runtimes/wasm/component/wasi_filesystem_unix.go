//go:build !windows

package component

import (
	"io/fs"
	"syscall"
)

// linkCount is a file's number of hard links, 1 when the system does not say.
func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// fileID is a file's inode and device, which identify it for metadata-hash.
func fileID(fi fs.FileInfo) (ino, dev uint64, ok bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino), uint64(st.Dev), true
	}
	return 0, 0, false
}
