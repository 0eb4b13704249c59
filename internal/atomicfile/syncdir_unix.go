//go:build !windows

package atomicfile

import "os"

// syncDir fsyncs a folder, so a rename in it survives a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
