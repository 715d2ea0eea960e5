// Package dirsync makes a change to a directory's entries durable: a file
// created, renamed or removed in it survives a power cut once Sync has
// returned.
package dirsync

import "os"

// Sync fsyncs directory dir.
func Sync(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
