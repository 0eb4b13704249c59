//go:build windows

package component

import "io/fs"

// linkCount is 1 on Windows: FileInfo does not carry the link count.
func linkCount(fs.FileInfo) uint64 { return 1 }

// fileID is not in a Windows FileInfo; metadata-hash falls back to the
// modification time and size.
func fileID(fs.FileInfo) (ino, dev uint64, ok bool) { return 0, 0, false }
