// Package rootfs is a wazero file system confined to one host directory.
//
// wazero's own directory mount joins guest paths onto the host path and lets
// the host kernel resolve them, so a symlink the guest makes (or finds) is
// followed wherever it points. Here every path is resolved by an os.Root:
// "..", absolute paths and symlinks, whether the guest made them or they were
// already on disk, can never reach a file outside the directory, for reading,
// writing, creating, renaming, linking or stat.
//
// The Root-based resolution (FS.Root and Errno) is meant to be shared with
// other guest-facing file systems, such as a WASI 0.2 filesystem.
package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// FS is an experimentalsys.FS whose every path resolves beneath one host
// directory. It is safe for concurrent use: requests that run side by side
// share it. Close it when the service that mounts it stops.
type FS struct {
	experimentalsys.UnimplementedFS
	root *os.Root
	// readOnly refuses every change with EROFS, as a read-only mount does.
	readOnly bool
}

var _ experimentalsys.FS = (*FS)(nil)

// New opens hostDir as the root of a confined file system. The directory is
// held open, so renaming it on the host does not redirect the guest.
func New(hostDir string) (*FS, error) {
	root, err := os.OpenRoot(hostDir)
	if err != nil {
		return nil, fmt.Errorf("open the mount folder %s: %w (it must exist and be a readable directory)", hostDir, err)
	}
	return &FS{root: root}, nil
}

// NewReadOnly is New for a folder the guest may read but not change: every
// open for writing and every change of an entry fails with EROFS.
func NewReadOnly(hostDir string) (*FS, error) {
	f, err := New(hostDir)
	if err != nil {
		return nil, err
	}
	f.readOnly = true
	return f, nil
}

// ReadOnly reports whether the FS refuses changes.
func (f *FS) ReadOnly() bool { return f.readOnly }

// writeFlags are the open flags that would change a file.
const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_CREAT | experimentalsys.O_TRUNC | experimentalsys.O_APPEND

// Close releases the directory. Files opened through the FS stay usable;
// path operations afterwards fail with EBADF.
func (f *FS) Close() error { return f.root.Close() }

// Root is the os.Root every path goes through, for a file system that needs
// the same confinement with another interface.
func (f *FS) Root() *os.Root { return f.root }

// String is the host directory, for logs.
func (f *FS) String() string { return f.root.Name() }

// rel turns wazero's path into the name os.Root expects. Every path is
// relative to the mount, whatever it starts with: wazero names an entry of
// a directory the guest opened at the mount's top (its name "") "/entry",
// so a leading "/" means the mount's root, never the host's. Stripping it
// gives nothing away: the Root still resolves the rest, and refuses ".."
// and symlinks that would lead out of the mount.
func rel(p string) string {
	p = strings.TrimLeft(p, "/")
	switch p {
	case "", ".":
		return "."
	}
	return p
}

// OpenFile implements experimentalsys.FS.
func (f *FS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if flag&experimentalsys.O_DIRECTORY != 0 && flag&(experimentalsys.O_WRONLY|experimentalsys.O_RDWR) != 0 {
		return nil, experimentalsys.EISDIR
	}
	if f.readOnly && flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	name := rel(p)
	if flag&experimentalsys.O_NOFOLLOW != 0 && !strings.HasSuffix(name, "/") {
		// os.Root follows a final symlink itself (inside the root) even when
		// asked not to, so the link is refused here. If the entry is swapped
		// for a link after this check, the open follows it, still inside.
		if fi, err := f.root.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	osf, err := f.root.OpenFile(name, toOSFlag(flag), perm)
	if err != nil {
		return nil, Errno(err)
	}
	file := newFile(osf, flag)
	file.readOnly = f.readOnly
	return file, 0
}

// Lstat implements experimentalsys.FS.
func (f *FS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Lstat(rel(p))
	if err != nil {
		return sys.Stat_t{}, Errno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Stat implements experimentalsys.FS.
func (f *FS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Stat(rel(p))
	if err != nil {
		return sys.Stat_t{}, Errno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Mkdir implements experimentalsys.FS.
func (f *FS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	errno := Errno(f.root.Mkdir(rel(p), perm))
	if errno == experimentalsys.ENOTDIR { // a parent is a file: as wazero's DirFS answers
		errno = experimentalsys.ENOENT
	}
	return errno
}

// Chmod implements experimentalsys.FS.
func (f *FS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	return Errno(f.root.Chmod(rel(p), perm))
}

// Rename implements experimentalsys.FS. Both names resolve beneath the root.
func (f *FS) Rename(from, to string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	from, to = rel(from), rel(to)
	if from == to {
		return 0
	}
	if errno := f.checkMovedLink(from, to); errno != 0 {
		return errno
	}
	err := f.root.Rename(from, to)
	if err == nil {
		return 0
	}
	errno := Errno(err)
	if errno != experimentalsys.EEXIST {
		return errno
	}
	// os.Root refuses to replace any directory; POSIX rename replaces an
	// empty one with a directory and answers EISDIR for a file.
	toInfo, err := f.root.Lstat(to)
	if err != nil || !toInfo.IsDir() {
		return errno
	}
	fromInfo, err := f.root.Lstat(from)
	if err != nil {
		return Errno(err)
	}
	if !fromInfo.IsDir() {
		return experimentalsys.EISDIR
	}
	if err := f.root.Remove(to); err != nil { // fails unless empty
		return Errno(err)
	}
	return Errno(f.root.Rename(from, to))
}

// Rmdir implements experimentalsys.FS.
func (f *FS) Rmdir(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name := rel(p)
	// os.Root.Remove removes files too; rmdir must not.
	fi, err := f.root.Lstat(name)
	if err != nil {
		return Errno(err)
	}
	if !fi.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return Errno(f.root.Remove(name))
}

// Unlink implements experimentalsys.FS.
func (f *FS) Unlink(p string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name := rel(p)
	// os.Root.Remove removes empty directories too; unlink must not.
	fi, err := f.root.Lstat(name)
	if err != nil {
		return Errno(err)
	}
	if fi.IsDir() {
		return experimentalsys.EISDIR
	}
	return Errno(f.root.Remove(name))
}

// Link implements experimentalsys.FS. Both names resolve beneath the root.
func (f *FS) Link(oldPath, newPath string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	if errno := f.checkMovedLink(rel(oldPath), rel(newPath)); errno != 0 {
		return errno
	}
	return Errno(f.root.Link(rel(oldPath), rel(newPath)))
}

// checkMovedLink refuses to rename or hard-link a symlink to a place from
// which its relative target climbs out of the root, the same rule Symlink
// applies when a link is made.
func (f *FS) checkMovedLink(from, to string) experimentalsys.Errno {
	fi, err := f.root.Lstat(from)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return 0 // not a link; the operation itself reports any error
	}
	target, err := f.root.Readlink(from)
	if err != nil {
		return Errno(err)
	}
	if !TargetStaysInside(to, target) {
		return experimentalsys.EPERM
	}
	return 0
}

// Symlink implements experimentalsys.FS. The link is made beneath the root.
// A target that is absolute, or that climbs above the root from the link's
// folder, is refused with EPERM: following it through this FS would be
// refused anyway, and the host programs that share the folder (backups, a
// container mounting it) would follow it out. Rename and Link apply the
// same rule to a link they move. This is a courtesy to those programs, not
// the boundary: renaming a folder changes the depth of the links inside it
// unchecked. The boundary is the Root, which no link leads out of.
func (f *FS) Symlink(target, linkName string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	name := rel(linkName)
	if !TargetStaysInside(name, target) {
		return experimentalsys.EPERM
	}
	return Errno(f.root.Symlink(target, name))
}

// TargetStaysInside reports whether a symlink at linkName (relative to a
// root) with the given target names a path beneath the root when read
// lexically, as os.Root resolves it.
func TargetStaysInside(linkName, target string) bool {
	if target == "" || path.IsAbs(target) || strings.HasPrefix(target, `\`) {
		return false
	}
	resolved := path.Join(path.Dir(path.Clean(linkName)), target)
	return resolved != ".." && !strings.HasPrefix(resolved, "../")
}

// Readlink implements experimentalsys.FS.
func (f *FS) Readlink(p string) (string, experimentalsys.Errno) {
	target, err := f.root.Readlink(rel(p))
	if err != nil {
		return "", Errno(err)
	}
	return target, 0
}

// Utimens implements experimentalsys.FS. A symlink is followed, inside the
// root.
func (f *FS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return 0
	}
	// os.Root.Chtimes leaves a time unchanged when given the zero time.Time.
	return Errno(f.root.Chtimes(rel(p), nanosToTime(atim), nanosToTime(mtim)))
}

func nanosToTime(n int64) time.Time {
	if n == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// errPathEscapesText is how os.Root words a refusal to leave the root; the
// error value itself is not exported. TestEscapesAreEPERM notices a change.
const errPathEscapesText = "path escapes from parent"

// Errno maps an error from os.Root or an os.File opened through it to the
// errno a guest sees. A path that would leave the root is EPERM.
func Errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	inner := err
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		inner = pe.Err
	case errors.As(err, &le):
		inner = le.Err
	}
	if inner != nil && inner.Error() == errPathEscapesText {
		return experimentalsys.EPERM
	}
	return experimentalsys.UnwrapOSError(err)
}
