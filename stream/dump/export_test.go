package dump

import "os"

// FailRemove makes cleanup fail to remove name with err, as a file the
// disk will not let go of.
func FailRemove(d *Dumper, name string, err error) {
	next := d.remove
	d.remove = func(root *os.Root, n string) error {
		if n == name {
			return err
		}
		return next(root, n)
	}
}

// Dir returns the dump directory.
func (d *Dumper) Dir() string { return d.cfg.Dir }
