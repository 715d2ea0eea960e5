//go:build ignore

// mediarecorder rewrites a WebM file the way browsers' MediaRecorder writes
// one: the Segment and every Cluster get the "unknown" size (all value bits
// set, same length, so no byte moves) and Info's Duration, if any, becomes a
// Void element of the same length. ffmpeg's webm muxer with -live 1 already
// leaves out Duration and Cues and writes an unknown Segment size, but it
// still gives every Cluster its size.
//
// Usage (from make.sh): go run mediarecorder.go in.webm out.webm
package main

import (
	"errors"
	"fmt"
	"os"
)

// Element IDs, with their length marker bits, as they appear in the file.
const (
	idEBML     = 0x1A45DFA3
	idSegment  = 0x18538067
	idInfo     = 0x1549A966
	idCluster  = 0x1F43B675
	idDuration = 0x4489
	idVoid     = 0xEC
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run mediarecorder.go in.webm out.webm")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err == nil {
		err = rewrite(b)
	}
	if err == nil {
		err = os.WriteFile(os.Args[2], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mediarecorder:", err)
		os.Exit(1)
	}
}

// vint reads an EBML variable-size integer at b[off:]: its length and its
// value with the length marker removed (keepMarker keeps it, for IDs).
func vint(b []byte, off int, keepMarker bool) (n int, v uint64, err error) {
	if off >= len(b) || b[off] == 0 {
		return 0, 0, errors.New("bad vint")
	}
	for n = 1; b[off]&(0x80>>(n-1)) == 0; n++ {
	}
	if off+n > len(b) {
		return 0, 0, errors.New("cut vint")
	}
	v = uint64(b[off])
	if !keepMarker {
		v &= 0xFF >> n
	}
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[off+i])
	}
	return n, v, nil
}

// header reads an element header at off: ID, where its size starts, the size
// field's length, the size, and where its data starts.
func header(b []byte, off int) (id uint64, sizeOff, sizeLen int, size uint64, data int, err error) {
	n, id, err := vint(b, off, true)
	if err != nil {
		return 0, 0, 0, 0, 0, err
	}
	sizeOff = off + n
	sizeLen, size, err = vint(b, sizeOff, false)
	return id, sizeOff, sizeLen, size, sizeOff + sizeLen, err
}

// unknown sets every value bit of the size field at b[off:off+n].
func unknown(b []byte, off, n int) {
	b[off] |= 0xFF >> n
	for i := 1; i < n; i++ {
		b[off+i] = 0xFF
	}
}

func rewrite(b []byte) error {
	id, _, _, size, data, err := header(b, 0)
	if err != nil || id != idEBML {
		return errors.New("not EBML")
	}
	off := data + int(size)
	id, sizeOff, sizeLen, _, data, err := header(b, off)
	if err != nil || id != idSegment {
		return errors.New("no Segment after the EBML header")
	}
	unknown(b, sizeOff, sizeLen)
	clusters := 0
	for off = data; off < len(b); {
		id, sizeOff, sizeLen, size, data, err := header(b, off)
		if err != nil {
			return err
		}
		if int(size) > len(b)-data {
			return errors.New("element runs past the end (already rewritten?)")
		}
		switch id {
		case idCluster:
			unknown(b, sizeOff, sizeLen)
			clusters++
		case idInfo:
			if err := voidDuration(b, data, data+int(size)); err != nil {
				return err
			}
		}
		off = data + int(size)
	}
	if clusters == 0 {
		return errors.New("no Cluster")
	}
	return nil
}

// voidDuration turns the Duration element in Info's data b[start:end] into a
// Void element of the same length.
func voidDuration(b []byte, start, end int) error {
	for off := start; off < end; {
		id, _, _, size, data, err := header(b, off)
		if err != nil {
			return err
		}
		if id == idDuration {
			// 2-byte ID, 1-byte size, 4 or 8 data bytes; the Void takes a
			// 1-byte ID and a 2-byte size to cover the same span.
			total := data + int(size) - off
			b[off] = idVoid
			b[off+1] = 0x40
			b[off+2] = byte(total - 3)
			for i := off + 3; i < off+total; i++ {
				b[i] = 0
			}
			return nil
		}
		off = data + int(size)
	}
	return nil
}
