package rootfs

import (
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"syscall"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

func withSyscallFlags(oflag experimentalsys.Oflag, flag int) int {
	if oflag&experimentalsys.O_DIRECTORY != 0 {
		flag |= syscall.O_DIRECTORY
	}
	if oflag&experimentalsys.O_DSYNC != 0 {
		flag |= syscall.O_DSYNC
	}
	if oflag&experimentalsys.O_NOFOLLOW != 0 {
		flag |= syscall.O_NOFOLLOW
	}
	if oflag&experimentalsys.O_NONBLOCK != 0 {
		flag |= syscall.O_NONBLOCK
	}
	if oflag&experimentalsys.O_RSYNC != 0 {
		flag |= syscall.O_RSYNC
	}
	return flag
}

// withFd runs op on f's descriptor; the descriptor cannot be closed meanwhile.
func withFd(f *os.File, op func(fd int) error) experimentalsys.Errno {
	rc, err := f.SyscallConn()
	if err != nil {
		return Errno(err)
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = op(int(fd)) }); err != nil {
		return Errno(err)
	}
	return Errno(opErr)
}

func setAppend(f *os.File, enable bool) experimentalsys.Errno {
	return withFd(f, func(fd int) error {
		flags, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
		if e != 0 {
			return e
		}
		if enable {
			flags |= syscall.O_APPEND
		} else {
			flags &^= syscall.O_APPEND
		}
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFL, flags); e != 0 {
			return e
		}
		return nil
	})
}

// pwrite writes buf at off with pwrite(2), whether or not the file is in
// append mode, resuming after a short write as os.File.WriteAt does.
func pwrite(f *os.File, buf []byte, off int64) (int, experimentalsys.Errno) {
	total := 0
	errno := withFd(f, func(fd int) error {
		for total < len(buf) {
			n, err := syscall.Pwrite(fd, buf[total:], off+int64(total))
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return io.ErrShortWrite
			}
			total += n
		}
		return nil
	})
	return total, errno
}

func datasync(f *os.File) experimentalsys.Errno {
	return withFd(f, func(fd int) error { return syscall.Fdatasync(fd) })
}

// utimeOmit is the kernel's UTIME_OMIT for utimensat.
const utimeOmit = (1 << 30) - 2

func futimens(f *os.File, atim, mtim int64) experimentalsys.Errno {
	times := [2]syscall.Timespec{syscall.NsecToTimespec(atim), syscall.NsecToTimespec(mtim)}
	if atim == experimentalsys.UTIME_OMIT {
		times[0] = syscall.Timespec{Nsec: utimeOmit}
	}
	if mtim == experimentalsys.UTIME_OMIT {
		times[1] = syscall.Timespec{Nsec: utimeOmit}
	}
	return withFd(f, func(fd int) error {
		// utimensat with a NULL path is futimens: it acts on fd itself.
		_, _, e := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&times)), 0, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	})
}

// dirStream reads a directory with getdents64 on the open descriptor. Go's
// own os.File.Readdir stats every entry by joining its name to the folder's
// host path, which a guest could redirect with a symlink; the kernel's
// records already carry each entry's inode and type.
type dirStream struct {
	buf      []byte
	pos, end int
}

// direntBufSize holds dozens of records per system call; a record is at most
// 19 bytes of header and a 256-byte name.
const direntBufSize = 8192

func (f *file) rewindDir() experimentalsys.Errno {
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		return f.ioErrno(err)
	}
	f.dir.pos, f.dir.end = 0, 0
	return 0
}

func (f *file) readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	d := &f.dir
	if d.buf == nil {
		d.buf = make([]byte, direntBufSize)
	}
	var out []experimentalsys.Dirent
	for len(out) < n {
		if d.pos >= d.end {
			var got int
			errno := withFd(f.f, func(fd int) error {
				var err error
				got, err = syscall.Getdents(fd, d.buf)
				return err
			})
			if errno != 0 {
				return nil, errno
			}
			if got <= 0 {
				break // end of directory
			}
			d.pos, d.end = 0, got
		}
		const header = 19 // ino u64, off i64, reclen u16, type u8
		rec := d.buf[d.pos:d.end]
		if len(rec) < header {
			return nil, experimentalsys.EIO
		}
		reclen := int(binary.NativeEndian.Uint16(rec[16:18]))
		if reclen < header || reclen > len(rec) {
			return nil, experimentalsys.EIO
		}
		d.pos += reclen
		ino := binary.NativeEndian.Uint64(rec[0:8])
		typ := rec[18]
		name := rec[header:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if string(name) == "." || string(name) == ".." {
			continue
		}
		mode, errno := direntType(f.f, typ, string(name))
		if errno != 0 {
			return nil, errno
		}
		out = append(out, experimentalsys.Dirent{Name: string(name), Ino: sys.Inode(ino), Type: mode})
	}
	return out, 0
}

// oPath is Linux's O_PATH, which package syscall does not export on every
// architecture; its value is the same on all those Go supports.
const oPath = 0x200000

// direntType maps a getdents type to a file mode type. When the file system
// does not record types, the entry is looked up relative to the open
// directory, without following a symlink.
func direntType(dir *os.File, typ uint8, name string) (fs.FileMode, experimentalsys.Errno) {
	switch typ {
	case syscall.DT_REG:
		return 0, 0
	case syscall.DT_DIR:
		return fs.ModeDir, 0
	case syscall.DT_LNK:
		return fs.ModeSymlink, 0
	case syscall.DT_FIFO:
		return fs.ModeNamedPipe, 0
	case syscall.DT_SOCK:
		return fs.ModeSocket, 0
	case syscall.DT_CHR:
		return fs.ModeDevice | fs.ModeCharDevice, 0
	case syscall.DT_BLK:
		return fs.ModeDevice, 0
	}
	var st syscall.Stat_t
	errno := withFd(dir, func(fd int) error {
		// O_PATH opens the entry itself (a symlink stays a symlink) without
		// reading or writing it; the name is one component of this folder.
		entry, err := syscall.Openat(fd, name, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(entry)
		return syscall.Fstat(entry, &st)
	})
	if errno != 0 {
		return 0, errno
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return fs.ModeDir, 0
	case syscall.S_IFLNK:
		return fs.ModeSymlink, 0
	case syscall.S_IFIFO:
		return fs.ModeNamedPipe, 0
	case syscall.S_IFSOCK:
		return fs.ModeSocket, 0
	case syscall.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice, 0
	case syscall.S_IFBLK:
		return fs.ModeDevice, 0
	}
	return 0, 0
}
