// Package durable holds the file-system steps that make a node's own
// files (ban list, own-tx journal) survive a crash or a power loss: what
// the chain store leaves to Badger, the small files do by hand, and they
// share these helpers rather than each writing its own.
package durable

import (
	"os"
	"runtime"
)

// SyncDir makes a rename or a file creation in dir durable: without it a
// crash can lose the directory entry although the file's data was synced.
// Windows cannot sync a directory (and does not need to).
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
