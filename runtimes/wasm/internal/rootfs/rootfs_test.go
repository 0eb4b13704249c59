package rootfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/fungi-go/fungi/internal/testutil"
)

const secret = "host secret"

// layout makes base/mount (the root, with inside.txt and sub/) and
// base/outside (with secret.txt), and links planted in the mount as if the
// data folder already held them: pre -> ../outside, prefile ->
// ../outside/secret.txt, dangling -> ../outside/created.txt, abs -> the
// outside folder by absolute path.
func layout(t *testing.T) (fsys *FS, mount, outside string) {
	t.Helper()
	base := t.TempDir()
	mount = filepath.Join(base, "mount")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{mount, outside, filepath.Join(mount, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(outside, "secret.txt"), secret)
	write(t, filepath.Join(mount, "inside.txt"), "inside")
	for link, target := range map[string]string{
		"pre":      "../outside",
		"prefile":  "../outside/secret.txt",
		"dangling": "../outside/created.txt",
		"abs":      outside,
	} {
		if err := os.Symlink(target, filepath.Join(mount, link)); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := New(mount)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, mount, outside
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// outsideUntouched fails unless the outside folder still holds exactly the
// secret, unchanged.
func outsideUntouched(t *testing.T, outside string) {
	t.Helper()
	names := testutil.DirNames(t, outside)
	if !slices.Equal(names, []string{"secret.txt"}) {
		t.Errorf("the outside folder now holds %v, want only secret.txt", names)
	}
	fi, err := os.Stat(filepath.Join(outside, "secret.txt"))
	if err != nil {
		t.Fatalf("the secret is gone: %v", err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("the secret's mode changed to %v", fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(filepath.Join(outside, "secret.txt")); string(got) != secret {
		t.Errorf("the secret now reads %q", got)
	}
}

func refused(t *testing.T, what string, errno experimentalsys.Errno) {
	t.Helper()
	if errno == 0 {
		t.Errorf("%s: allowed, want it refused", what)
	}
}

func readAll(t *testing.T, f experimentalsys.File) string {
	t.Helper()
	var out bytes.Buffer
	buf := make([]byte, 4)
	for {
		n, errno := f.Read(buf)
		if errno != 0 {
			t.Fatalf("read: %v", errno)
		}
		if n == 0 {
			return out.String()
		}
		out.Write(buf[:n])
	}
}

func TestEscapesAreEPERM(t *testing.T) {
	fsys, _, _ := layout(t)
	for _, p := range []string{"../outside/secret.txt", "/../outside/secret.txt", "pre/secret.txt", "/pre/secret.txt", "prefile", "abs/secret.txt", "sub/../../outside/secret.txt"} {
		if _, errno := fsys.OpenFile(p, experimentalsys.O_RDONLY, 0); errno != experimentalsys.EPERM {
			t.Errorf("open %s: errno %v, want EPERM", p, errno)
		}
		if _, errno := fsys.Stat(p); errno != experimentalsys.EPERM {
			t.Errorf("stat %s: errno %v, want EPERM", p, errno)
		}
	}
}

// TestAbsolutePathsAreMountRelative checks that a path starting with "/"
// names an entry of the mount: wazero writes the entries of a directory
// the guest opened at the mount's top that way, and creating files and
// folders there must work. An absolute host path read this way names a
// place inside the mount, never the host file.
func TestAbsolutePathsAreMountRelative(t *testing.T) {
	fsys, mount, outside := layout(t)
	if errno := fsys.Mkdir("/made", 0o755); errno != 0 {
		t.Fatalf("mkdir /made: %v", errno)
	}
	if fi, err := os.Stat(filepath.Join(mount, "made")); err != nil || !fi.IsDir() {
		t.Errorf("mkdir /made did not make a folder in the mount: %v", err)
	}
	f, errno := fsys.OpenFile("/made/new.txt", experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_EXCL, 0o644)
	if errno != 0 {
		t.Fatalf("create /made/new.txt: %v", errno)
	}
	f.Write([]byte("new"))
	f.Close()
	if b, err := os.ReadFile(filepath.Join(mount, "made", "new.txt")); err != nil || string(b) != "new" {
		t.Errorf("the created file in the mount holds %q (%v), want \"new\"", b, err)
	}
	if st, errno := fsys.Stat("/"); errno != 0 || st.Mode&fs.ModeDir == 0 {
		t.Errorf("stat / (the mount itself): %v %v", st.Mode, errno)
	}
	// The host path of the secret, read inside the mount, finds the
	// mount's own copy at that path, or nothing.
	hostSecret := filepath.Join(outside, "secret.txt")
	if _, errno := fsys.OpenFile(hostSecret, experimentalsys.O_RDONLY, 0); errno != experimentalsys.ENOENT {
		t.Errorf("open %s: errno %v, want ENOENT (no such path inside the mount)", hostSecret, errno)
	}
	mirror := filepath.Join(mount, hostSecret)
	if err := os.MkdirAll(filepath.Dir(mirror), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, mirror, "the mount's copy")
	g, errno := fsys.OpenFile(hostSecret, experimentalsys.O_RDONLY, 0)
	if errno != 0 {
		t.Fatalf("open %s with the mount's copy in place: %v", hostSecret, errno)
	}
	defer g.Close()
	if got := readAll(t, g); got != "the mount's copy" {
		t.Errorf("open %s read %q, want the mount's copy", hostSecret, got)
	}
	outsideUntouched(t, outside)
}

func TestReadEscapesRefused(t *testing.T) {
	fsys, _, outside := layout(t)
	for _, p := range []string{"../outside/secret.txt", "/" + filepath.Join(outside, "secret.txt"), "pre/secret.txt", "prefile", "abs/secret.txt"} {
		f, errno := fsys.OpenFile(p, experimentalsys.O_RDONLY, 0)
		if errno == 0 {
			t.Errorf("open %s for reading: allowed and it reads %q", p, readAll(t, f))
			f.Close()
		}
	}
	if d, errno := fsys.OpenFile("pre", experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0); errno == 0 {
		ents, _ := d.Readdir(10)
		t.Errorf("opened the outside folder through a link: %v", ents)
	}
	for _, p := range []string{"pre/secret.txt", "prefile", "abs", "../outside"} {
		_, errno := fsys.Stat(p)
		refused(t, "stat "+p, errno)
	}
	for _, p := range []string{"../outside/secret.txt", "pre/secret.txt"} {
		_, errno := fsys.Lstat(p)
		refused(t, "lstat "+p, errno)
	}
	// The link itself is in the mount: lstat and readlink see it.
	if st, errno := fsys.Lstat("pre"); errno != 0 || st.Mode&fs.ModeSymlink == 0 {
		t.Errorf("lstat of the planted link: %v %v", st.Mode, errno)
	}
}

func TestWriteEscapesRefused(t *testing.T) {
	fsys, _, outside := layout(t)
	wr := experimentalsys.O_WRONLY | experimentalsys.O_CREAT | experimentalsys.O_TRUNC
	for _, p := range []string{"../outside/new.txt", "../outside/secret.txt", "pre/new.txt", "pre/secret.txt", "prefile", "dangling", "abs/new.txt"} {
		f, errno := fsys.OpenFile(p, wr, 0o644)
		if errno == 0 {
			f.Write([]byte("pwned"))
			f.Close()
			t.Errorf("open %s for writing: allowed", p)
		}
	}
	refused(t, "mkdir through a link", fsys.Mkdir("pre/newdir", 0o755))
	refused(t, "mkdir ..", fsys.Mkdir("../outside/newdir", 0o755))
	refused(t, "chmod through a link", fsys.Chmod("prefile", 0o777))
	refused(t, "chmod ..", fsys.Chmod("../outside/secret.txt", 0o777))
	refused(t, "utimens through a link", fsys.Utimens("prefile", 0, 0))
	refused(t, "unlink through a link", fsys.Unlink("pre/secret.txt"))
	refused(t, "unlink ..", fsys.Unlink("../outside/secret.txt"))
	refused(t, "rmdir ..", fsys.Rmdir("../outside"))
	refused(t, "symlink placed through a link", fsys.Symlink("x", "pre/planted"))
	outsideUntouched(t, outside)
}

func TestGuestSymlinksCannotLeave(t *testing.T) {
	fsys, mount, outside := layout(t)
	for _, target := range []string{"../outside", "../outside/secret.txt", outside, "/etc", "sub/../../outside", ""} {
		if errno := fsys.Symlink(target, "made"); errno != experimentalsys.EPERM {
			t.Errorf("symlink made -> %q: errno %v, want EPERM", target, errno)
			fsys.Unlink("made")
		}
	}
	if errno := fsys.Symlink("../../outside", "sub/made"); errno != experimentalsys.EPERM {
		t.Errorf("symlink sub/made -> ../../outside: errno %v, want EPERM", errno)
	}
	if _, err := os.Lstat(filepath.Join(mount, "made")); err == nil {
		t.Error("a refused symlink was created anyway")
	}
	// A link that stays inside where it is made may not be moved to where
	// its target climbs out.
	if errno := fsys.Symlink("../inside.txt", "sub/up"); errno != 0 {
		t.Fatalf("symlink sub/up -> ../inside.txt: %v", errno)
	}
	if errno := fsys.Rename("sub/up", "up"); errno != experimentalsys.EPERM {
		t.Errorf("rename sub/up to up, where ../inside.txt leaves the mount: errno %v, want EPERM", errno)
	}
	if errno := fsys.Link("sub/up", "up"); errno != experimentalsys.EPERM {
		t.Errorf("hard link sub/up as up: errno %v, want EPERM", errno)
	}
	if errno := fsys.Link("sub/up", "sub/up2"); errno != 0 {
		t.Errorf("hard link sub/up as sub/up2, same depth: %v", errno)
	}
	if _, err := os.Lstat(filepath.Join(mount, "up")); err == nil {
		t.Error("the link was moved out of its depth anyway")
	}
	outsideUntouched(t, outside)
}

func TestLinkAndRenameEscapesRefused(t *testing.T) {
	fsys, mount, outside := layout(t)
	refused(t, "link in from ..", fsys.Link("../outside/secret.txt", "stolen"))
	refused(t, "link in through a link", fsys.Link("pre/secret.txt", "stolen"))
	refused(t, "link out to ..", fsys.Link("inside.txt", "../outside/leak"))
	refused(t, "link out through a link", fsys.Link("inside.txt", "pre/leak"))
	refused(t, "rename in from ..", fsys.Rename("../outside/secret.txt", "stolen"))
	refused(t, "rename in through a link", fsys.Rename("pre/secret.txt", "stolen"))
	refused(t, "rename out to ..", fsys.Rename("inside.txt", "../outside/moved"))
	refused(t, "rename out through a link", fsys.Rename("inside.txt", "pre/moved"))
	refused(t, "rename out by absolute path", fsys.Rename("inside.txt", filepath.Join(outside, "moved")))
	if _, err := os.Stat(filepath.Join(mount, "stolen")); err == nil {
		t.Error("a file was brought into the mount from outside")
	}
	if got, _ := os.ReadFile(filepath.Join(mount, "inside.txt")); string(got) != "inside" {
		t.Errorf("inside.txt now reads %q", got)
	}
	outsideUntouched(t, outside)
}

func TestNormalFileWork(t *testing.T) {
	fsys, mount, _ := layout(t)
	f, errno := fsys.OpenFile("sub/a.txt", experimentalsys.O_RDWR|experimentalsys.O_CREAT|experimentalsys.O_EXCL, 0o644)
	if errno != 0 {
		t.Fatalf("create: %v", errno)
	}
	if n, errno := f.Write([]byte("hello world")); n != 11 || errno != 0 {
		t.Fatalf("write: %d %v", n, errno)
	}
	if n, errno := f.Pwrite([]byte("W"), 6); n != 1 || errno != 0 {
		t.Fatalf("pwrite: %d %v", n, errno)
	}
	buf := make([]byte, 5)
	if n, errno := f.Pread(buf, 6); errno != 0 || string(buf[:n]) != "World" {
		t.Fatalf("pread: %q %v", buf[:n], errno)
	}
	if off, errno := f.Seek(0, io.SeekStart); off != 0 || errno != 0 {
		t.Fatalf("seek: %d %v", off, errno)
	}
	if got := readAll(t, f); got != "hello World" {
		t.Fatalf("read back %q", got)
	}
	if errno := f.Truncate(5); errno != 0 {
		t.Fatalf("truncate: %v", errno)
	}
	st, errno := f.Stat()
	if errno != 0 || st.Size != 5 || st.Ino == 0 {
		t.Fatalf("fstat: %+v %v", st, errno)
	}
	if ino, errno := f.Ino(); ino != st.Ino || errno != 0 {
		t.Fatalf("ino: %d %v, want %d", ino, errno, st.Ino)
	}
	if errno := f.Sync(); errno != 0 {
		t.Fatalf("sync: %v", errno)
	}
	if errno := f.Datasync(); errno != 0 {
		t.Fatalf("datasync: %v", errno)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	if errno := f.Utimens(experimentalsys.UTIME_OMIT, mtime); errno != 0 {
		t.Fatalf("futimens: %v", errno)
	}
	if st, _ := f.Stat(); st.Mtim != mtime {
		t.Fatalf("futimens set mtime %d, want %d", st.Mtim, mtime)
	}
	if errno := f.SetAppend(true); errno != 0 || !f.IsAppend() {
		t.Fatalf("set append: %v", errno)
	}
	f.Seek(0, io.SeekStart)
	f.Write([]byte("!"))
	if errno := f.Close(); errno != 0 {
		t.Fatalf("close: %v", errno)
	}
	if _, errno := f.Stat(); errno != experimentalsys.EBADF {
		t.Fatalf("stat after close: %v, want EBADF", errno)
	}
	if got, _ := os.ReadFile(filepath.Join(mount, "sub", "a.txt")); string(got) != "hello!" {
		t.Fatalf("on disk: %q, want %q (append mode writes at the end)", got, "hello!")
	}
	if _, errno := fsys.OpenFile("sub/a.txt", experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_EXCL, 0o644); errno != experimentalsys.EEXIST {
		t.Fatalf("exclusive create of an existing file: %v, want EEXIST", errno)
	}
	if _, errno := fsys.OpenFile("nope", experimentalsys.O_RDONLY, 0); errno != experimentalsys.ENOENT {
		t.Fatalf("open missing: %v, want ENOENT", errno)
	}
	if _, errno := fsys.OpenFile("inside.txt", experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0); errno != experimentalsys.ENOTDIR {
		t.Fatalf("open a file as a directory: %v, want ENOTDIR", errno)
	}

	// Links that stay inside work, in both directions of a folder.
	if errno := fsys.Symlink("sub/a.txt", "toa"); errno != 0 {
		t.Fatalf("symlink inside: %v", errno)
	}
	if errno := fsys.Symlink("../inside.txt", "sub/up"); errno != 0 {
		t.Fatalf("symlink up, still inside: %v", errno)
	}
	if target, errno := fsys.Readlink("toa"); errno != 0 || target != "sub/a.txt" {
		t.Fatalf("readlink: %q %v", target, errno)
	}
	for p, want := range map[string]string{"toa": "hello!", "sub/up": "inside"} {
		f, errno := fsys.OpenFile(p, experimentalsys.O_RDONLY, 0)
		if errno != 0 {
			t.Fatalf("open through the inside link %s: %v", p, errno)
		}
		if got := readAll(t, f); got != want {
			t.Fatalf("through %s: %q, want %q", p, got, want)
		}
		f.Close()
	}
	if _, errno := fsys.OpenFile("toa", experimentalsys.O_RDONLY|experimentalsys.O_NOFOLLOW, 0); errno != experimentalsys.ELOOP {
		t.Fatalf("O_NOFOLLOW on a link: %v, want ELOOP", errno)
	}
	if st, errno := fsys.Stat("toa"); errno != 0 || st.Size != 6 {
		t.Fatalf("stat through the link: %+v %v", st, errno)
	}
	before, _ := fsys.Stat("sub/a.txt")
	if errno := fsys.Utimens("toa", mtime, experimentalsys.UTIME_OMIT); errno != 0 {
		t.Fatalf("utimens through the link: %v", errno)
	}
	if st, _ := fsys.Stat("sub/a.txt"); st.Atim != mtime || st.Mtim != before.Mtim {
		t.Fatalf("utimens: atim %d mtim %d, want atim %d and mtim kept at %d", st.Atim, st.Mtim, mtime, before.Mtim)
	}
	if errno := fsys.Chmod("toa", 0o600); errno != 0 {
		t.Fatalf("chmod: %v", errno)
	}
	if st, _ := fsys.Lstat("sub/a.txt"); st.Mode.Perm() != 0o600 {
		t.Fatalf("chmod through the link: mode %v", st.Mode)
	}

	// Hard link, rename, mkdir, rmdir, unlink inside.
	if errno := fsys.Link("sub/a.txt", "hard"); errno != 0 {
		t.Fatalf("link: %v", errno)
	}
	if errno := fsys.Rename("hard", "sub/renamed"); errno != 0 {
		t.Fatalf("rename: %v", errno)
	}
	if errno := fsys.Mkdir("d", 0o755); errno != 0 {
		t.Fatalf("mkdir: %v", errno)
	}
	if errno := fsys.Mkdir("d", 0o755); errno != experimentalsys.EEXIST {
		t.Fatalf("mkdir again: %v, want EEXIST", errno)
	}
	if errno := fsys.Mkdir("inside.txt/x", 0o755); errno != experimentalsys.ENOENT {
		t.Fatalf("mkdir under a file: %v, want ENOENT", errno)
	}
	if errno := fsys.Rmdir("inside.txt"); errno != experimentalsys.ENOTDIR {
		t.Fatalf("rmdir a file: %v, want ENOTDIR", errno)
	}
	if errno := fsys.Unlink("d"); errno != experimentalsys.EISDIR {
		t.Fatalf("unlink a folder: %v, want EISDIR", errno)
	}
	if errno := fsys.Rename("inside.txt", "d"); errno != experimentalsys.EISDIR {
		t.Fatalf("rename a file over a folder: %v, want EISDIR", errno)
	}
	if errno := fsys.Mkdir("e", 0o755); errno != 0 {
		t.Fatalf("mkdir: %v", errno)
	}
	if errno := fsys.Rename("e", "d"); errno != 0 {
		t.Fatalf("rename a folder over an empty one: %v", errno)
	}
	if errno := fsys.Rmdir("d"); errno != 0 {
		t.Fatalf("rmdir: %v", errno)
	}
	if errno := fsys.Unlink("sub/renamed"); errno != 0 {
		t.Fatalf("unlink: %v", errno)
	}
	if _, err := os.Stat(filepath.Join(mount, "sub", "renamed")); err == nil {
		t.Fatal("unlink left the file")
	}
}

func TestReaddir(t *testing.T) {
	fsys, mount, _ := layout(t)
	for i := range 300 { // more than one getdents buffer
		write(t, filepath.Join(mount, "sub", "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), "x")
	}
	os.Mkdir(filepath.Join(mount, "sub", "dir"), 0o755)
	os.Symlink("dir", filepath.Join(mount, "sub", "ln"))
	d, errno := fsys.OpenFile("sub", experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	defer d.Close()
	readAllEntries := func() map[string]experimentalsys.Dirent {
		got := map[string]experimentalsys.Dirent{}
		for {
			ents, errno := d.Readdir(7)
			if errno != 0 {
				t.Fatalf("readdir: %v", errno)
			}
			for _, e := range ents {
				got[e.Name] = e
			}
			if len(ents) < 7 {
				return got
			}
		}
	}
	got := readAllEntries()
	if len(got) != 302 {
		t.Fatalf("readdir returned %d entries, want 302", len(got))
	}
	if _, ok := got["."]; ok {
		t.Fatal("readdir returned \".\"")
	}
	if e := got["dir"]; e.Type != fs.ModeDir || e.Ino == 0 {
		t.Fatalf("dir entry: %+v", e)
	}
	if e := got["ln"]; e.Type != fs.ModeSymlink {
		t.Fatalf("link entry: %+v", e)
	}
	if e := got["faa"]; e.Type != 0 || e.Ino == 0 {
		t.Fatalf("file entry: %+v", e)
	}
	write(t, filepath.Join(mount, "sub", "late"), "x")
	if _, errno := d.Seek(0, io.SeekStart); errno != 0 {
		t.Fatalf("rewind: %v", errno)
	}
	if got := readAllEntries(); len(got) != 303 {
		t.Fatalf("after rewind readdir returned %d entries, want 303 (the new file too)", len(got))
	}
	f, _ := fsys.OpenFile("inside.txt", experimentalsys.O_RDONLY, 0)
	defer f.Close()
	if _, errno := f.Readdir(1); errno != experimentalsys.EBADF {
		t.Fatalf("readdir on a file: %v, want EBADF", errno)
	}
}

func TestClosedFS(t *testing.T) {
	fsys, _, _ := layout(t)
	fsys.Close()
	if _, errno := fsys.Stat("inside.txt"); errno != experimentalsys.EBADF {
		t.Fatalf("stat after Close: %v, want EBADF", errno)
	}
}

func TestNewRefusesMissingFolder(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := New(missing); err == nil {
		t.Fatal("New accepted a folder that does not exist")
	}
}

// TestConcurrentUse runs file work from several goroutines on one FS, as the
// requests of one service do; run it with -race.
func TestConcurrentUse(t *testing.T) {
	fsys, mount, _ := layout(t)
	done := make(chan error)
	for i := range 8 {
		go func() {
			name := "sub/c" + string(rune('0'+i))
			for range 20 {
				f, errno := fsys.OpenFile(name, experimentalsys.O_RDWR|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o644)
				if errno != 0 {
					done <- fmt.Errorf("create %s: %w", name, errno)
					return
				}
				f.Write([]byte(name))
				f.Close()
				if st, errno := fsys.Stat(name); errno != 0 || st.Size != int64(len(name)) {
					done <- fmt.Errorf("stat %s: size %d, errno %v", name, st.Size, errno)
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatalf("concurrent file work: %v", err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(mount, "sub"))
	if len(entries) != 8 {
		t.Fatalf("%d files made, want 8", len(entries))
	}
}

// TestReadOnlyRefusesEveryChange checks that a read-only mount reads as
// usual and answers EROFS to every change, by path and through a file,
// and that the folder is unchanged afterwards.
func TestReadOnlyRefusesEveryChange(t *testing.T) {
	_, mount, _ := layout(t)
	fsys, err := NewReadOnly(mount)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	f, errno := fsys.OpenFile("inside.txt", experimentalsys.O_RDONLY, 0)
	if errno != 0 {
		t.Fatalf("open for reading: %v", errno)
	}
	if got := readAll(t, f); got != "inside" {
		t.Errorf("read %q, want inside", got)
	}
	if errno := f.Utimens(0, 0); errno != experimentalsys.EROFS {
		t.Errorf("utimens through the file: %v, want EROFS", errno)
	}
	if _, errno := f.Write([]byte("x")); errno == 0 {
		t.Error("write through a file opened for reading: allowed")
	}
	f.Close()
	for _, flag := range []experimentalsys.Oflag{experimentalsys.O_WRONLY, experimentalsys.O_RDWR, experimentalsys.O_RDONLY | experimentalsys.O_CREAT, experimentalsys.O_RDONLY | experimentalsys.O_TRUNC, experimentalsys.O_RDONLY | experimentalsys.O_APPEND} {
		if _, errno := fsys.OpenFile("inside.txt", flag, 0o644); errno != experimentalsys.EROFS {
			t.Errorf("open with flags %v: %v, want EROFS", flag, errno)
		}
	}
	for what, errno := range map[string]experimentalsys.Errno{
		"mkdir":   fsys.Mkdir("new", 0o755),
		"chmod":   fsys.Chmod("inside.txt", 0o600),
		"rename":  fsys.Rename("inside.txt", "moved.txt"),
		"rmdir":   fsys.Rmdir("sub"),
		"unlink":  fsys.Unlink("inside.txt"),
		"link":    fsys.Link("inside.txt", "linked.txt"),
		"symlink": fsys.Symlink("inside.txt", "sym"),
		"utimens": fsys.Utimens("inside.txt", 0, 0),
	} {
		if errno != experimentalsys.EROFS {
			t.Errorf("%s: %v, want EROFS", what, errno)
		}
	}
	names := testutil.DirNames(t, mount)
	if want := []string{"abs", "dangling", "inside.txt", "pre", "prefile", "sub"}; !slices.Equal(names, want) {
		t.Errorf("the read-only folder now holds %v, want %v", names, want)
	}
	if b, _ := os.ReadFile(filepath.Join(mount, "inside.txt")); string(b) != "inside" {
		t.Errorf("inside.txt now holds %q", b)
	}
}

// TestPwriteInAppendMode checks that a positioned write to a file opened
// for appending succeeds (os.File.WriteAt refuses it) and leaves the
// file's offset where it was, as wasi-testsuite's pwrite-with-append asks.
func TestPwriteInAppendMode(t *testing.T) {
	fsys, mount, _ := layout(t)
	f, errno := fsys.OpenFile("log.txt", experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_APPEND, 0o644)
	if errno != 0 {
		t.Fatal(errno)
	}
	defer f.Close()
	if _, errno := f.Write([]byte("abcd")); errno != 0 {
		t.Fatal(errno)
	}
	if n, errno := f.Pwrite([]byte("xyz"), 0); errno != 0 || n != 3 {
		t.Fatalf("pwrite in append mode: %d bytes, %v; want 3 bytes written", n, errno)
	}
	if off, errno := f.Seek(0, io.SeekCurrent); errno != 0 || off != 4 {
		t.Errorf("offset after pwrite: %d (%v), want 4", off, errno)
	}
	// Linux writes at the end in append mode, POSIX at the offset; both
	// keep every byte written.
	b, _ := os.ReadFile(filepath.Join(mount, "log.txt"))
	if got := string(b); got != "abcdxyz" && got != "xyzd" {
		t.Errorf("the file holds %q, want abcdxyz (Linux) or xyzd (POSIX)", got)
	}
}
