package blob_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"regexp"

	"github.com/fernet/fernet-go"

	"tyst/store/blob"
	"tyst/store/fstream"
)

// Blobs are stream-format files: encrypt into a Writer, commit under the
// keyed name, read back with random access through the Object.
func ExampleNewLocal() {
	dir, _ := os.MkdirTemp("", "tyst-example")
	defer os.RemoveAll(dir)
	blobs, err := blob.NewLocal(filepath.Join(dir, "blobs"), blob.LocalOptions{
		Names:  regexp.MustCompile(`^[0-9a-f]{64}$`),
		FanOut: true,
		Ext:    ".bin",
	})
	if err != nil {
		log.Fatal(err)
	}
	var key fernet.Key
	key.Generate()

	w, _ := blobs.Create()
	defer w.Abort() // a no-op once committed
	fw, _ := fstream.NewWriter(w, &key)
	io.WriteString(fw, "interview audio")
	if err := fw.Close(); err != nil {
		log.Fatal(err)
	}
	name := "5d41402abc4b2a76b9719d911017c592" + "5d41402abc4b2a76b9719d911017c592"
	if err := w.Commit(name); err != nil {
		log.Fatal(err)
	}

	obj, err := blobs.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	rs, err := fstream.NewReadSeeker(obj, obj.Size(), []*fernet.Key{&key})
	if err != nil {
		log.Fatal(err)
	}
	rs.Seek(10, io.SeekStart)
	rest, _ := io.ReadAll(rs)
	fmt.Printf("%d bytes on disk for %d of audio; from 10: %q\n", obj.Size(), rs.Size(), rest)
	// Output: 1398463 bytes on disk for 15 of audio; from 10: "audio"
}
