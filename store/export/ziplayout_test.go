package export

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// sparseFile is a file of which a hole, set once the writer reaches it,
// holds zeros that are counted but not kept: a ZIP over 4 GiB in a few KiB.
type sparseFile struct {
	head, tail []byte
	holeAt     int64
	holeLen    int64 // 0 until the hole is set
	n          int64
}

var zeros = make([]byte, 64<<10)

func (s *sparseFile) hole(n int64) { s.holeAt, s.holeLen = s.n, n }

func (s *sparseFile) Write(p []byte) (int, error) {
	written := len(p)
	if s.holeLen == 0 {
		s.head = append(s.head, p...)
	} else {
		if in := min(int64(len(p)), s.holeAt+s.holeLen-s.n); in > 0 {
			for q := p[:in]; len(q) > 0; q = q[min(len(q), len(zeros)):] {
				if !bytes.Equal(q[:min(len(q), len(zeros))], zeros[:min(len(q), len(zeros))]) {
					return 0, errors.New("sparseFile: non-zero bytes in the hole")
				}
			}
			p = p[in:]
			s.n += in
		}
		s.tail = append(s.tail, p...)
	}
	s.n += int64(len(p))
	return written, nil
}

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	holeEnd := s.holeAt + s.holeLen
	n := 0
	for n < len(p) {
		o := off + int64(n)
		switch {
		case o >= s.n:
			return n, io.EOF
		case o < int64(len(s.head)):
			n += copy(p[n:], s.head[o:])
		case o < holeEnd:
			k := int(min(int64(len(p)-n), holeEnd-o))
			clear(p[n : n+k])
			n += k
		default:
			n += copy(p[n:], s.tail[o-holeEnd:])
		}
	}
	return n, nil
}

// TestCheckLayout_Zip64: a package over 4 GiB, as Write makes one (the
// audio with a 64-bit data descriptor and a zip64 block in the directory,
// the entries after it at offsets past 4 GiB, the zip64 end record), has
// a layout checkLayout accepts; its 64-bit descriptor is checked too.
func TestCheckLayout_Zip64(t *testing.T) {
	const audioLen = 1<<32 + 4096
	s := &sparseFile{}
	zw := zip.NewWriter(s)
	for _, name := range []string{NameReadme, NameVerify, NameAllowedSigners, NameTranscript, NameAudit} {
		if _, err := putEntry(zw, name, []byte(`{"name":"`+name+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := zw.CreateHeader(header(NameAudioEncrypted, zip.Store))
	if err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil {
		t.Fatal(err)
	}
	s.hole(audioLen)
	zero := make([]byte, 1<<20)
	for left := int64(audioLen); left > 0; left -= int64(len(zero)) {
		if _, err := fw.Write(zero[:min(left, int64(len(zero)))]); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{NameManifest, NameSignature} {
		if _, err := putEntry(zw, name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	check := func(s *sparseFile) error {
		d, err := checkDirectory(s, s.n)
		if err != nil {
			return err
		}
		if d.offset < 1<<32 {
			t.Fatal("the directory is not past 4 GiB: the test proves nothing")
		}
		zr, err := zip.NewReader(s, s.n)
		if err != nil {
			t.Fatal(err)
		}
		v := &verifier{rep: &Report{}, size: s.n}
		if err := v.index(zr.File); err != nil {
			return err
		}
		return checkLayout(s, d, zr.File)
	}
	if err := check(s); err != nil {
		t.Fatalf("the layout of a package over 4 GiB is refused: %v", err)
	}

	// The audio's data descriptor starts the tail: 64-bit sizes.
	le := binary.LittleEndian
	if le.Uint32(s.tail) != sigDesc || le.Uint64(s.tail[8:]) != audioLen {
		t.Fatal("no 64-bit data descriptor after the audio: the test proves nothing")
	}
	bad := *s
	bad.tail = bytes.Clone(s.tail)
	le.PutUint64(bad.tail[16:], audioLen-1)
	want := "not a tyst package ZIP: the data descriptor of audio.bin disagrees with the central directory"
	if err := check(&bad); err == nil || err.Error() != want {
		t.Fatalf("a 64-bit descriptor with another size: %v, want %q", err, want)
	}
}
