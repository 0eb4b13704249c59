// Package atomicfile writes files so that a crash at any point leaves either
// the old content or the new, never a torn file.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tempMarker sits between the target's name and the random digits in a
// temporary file's name: ".devices.json.tmp-1234567".
const tempMarker = ".tmp-"

// Write replaces path with data: a temporary file in the same folder is
// written and fsynced, renamed over path, and the folder is fsynced so the
// rename itself survives a power cut.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := createTemp(dir, filepath.Base(path))
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// createTemp makes the temporary file Write fills for target (a base
// name): hidden, named after the target, ending in os.CreateTemp's random
// decimal digits, so IsTemp recognises exactly these files.
func createTemp(dir, target string) (*os.File, error) {
	return os.CreateTemp(dir, "."+target+tempMarker+"*")
}

// IsTemp reports whether name, a file's base name, is a temporary file
// Write makes. A crash between creating one and the rename leaves it
// behind; whoever owns the folder can delete such files when no Write can
// be running there.
func IsTemp(name string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	i := strings.LastIndex(name, tempMarker)
	if i <= 1 { // no target name between the dot and the marker
		return false
	}
	digits := name[i+len(tempMarker):]
	if digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
