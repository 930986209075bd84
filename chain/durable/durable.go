// Package durable holds the file-system steps that make a node's own
// files (keys, genesis, ban list, pool file, own-tx journal, address
// files) survive a crash or a power loss: what the chain store leaves to
// Badger, the small files do by hand, and they share these helpers rather
// than each writing its own.
package durable

import (
	"os"
	"path/filepath"
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

// WriteFile replaces path with data so that a crash at any point leaves
// either the old file or the new one, complete: data goes to a temp file
// beside path (mode perm), which is synced, renamed over path, and the
// directory is synced so the rename itself is durable. A reader polling
// for path never sees a partial write.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}
