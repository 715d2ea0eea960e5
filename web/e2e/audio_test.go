package e2e

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"

	"tyst/store/media"
)

// writeToneWAV writes a mono 16-bit WAV of a sine tone.
func writeToneWAV(t *testing.T, path string, rate int, freq float64, seconds float64) {
	t.Helper()
	n := int(float64(rate) * seconds)
	b := append(media.WAVHeader(int64(2*n), rate, 1), make([]byte, 2*n)...)
	for i := range n {
		v := 0.6 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(v*32767)))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wavInfo is what a stored WAV says about itself.
type wavInfo struct {
	rate, channels, bits int
	pcm                  []byte
}

// parseWAV reads a canonical PCM WAV (RIFF, fmt, data chunks).
func parseWAV(b []byte) (*wavInfo, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a RIFF/WAVE file")
	}
	w := &wavInfo{}
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8:]
		if size > len(body) {
			size = len(body)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, errors.New("short fmt chunk")
			}
			if binary.LittleEndian.Uint16(body[0:]) != 1 {
				return nil, errors.New("not PCM")
			}
			w.channels = int(binary.LittleEndian.Uint16(body[2:]))
			w.rate = int(binary.LittleEndian.Uint32(body[4:]))
			w.bits = int(binary.LittleEndian.Uint16(body[14:]))
		case "data":
			w.pcm = body[:size]
		}
		off += 8 + size + size%2
	}
	if w.rate == 0 || w.pcm == nil {
		return nil, errors.New("no fmt or data chunk")
	}
	return w, nil
}

// samples returns the first channel as float64 in -1..1.
func (w *wavInfo) samples() []float64 {
	step := 2 * w.channels
	out := make([]float64, 0, len(w.pcm)/step)
	for i := 0; i+1 < len(w.pcm); i += step {
		out = append(out, float64(int16(binary.LittleEndian.Uint16(w.pcm[i:])))/32768)
	}
	return out
}

// dominantFrequency finds the strongest frequency between lo and hi Hz by
// a DFT scan (Goertzel, 5 Hz steps) over a window of the samples.
func dominantFrequency(s []float64, rate int, lo, hi float64) (freq, share float64) {
	if len(s) > rate { // one second is plenty
		s = s[len(s)/2-rate/2 : len(s)/2+rate/2]
	}
	var total float64
	for _, v := range s {
		total += v * v
	}
	best, bestP := 0.0, 0.0
	for f := lo; f <= hi; f += 5 {
		w := 2 * math.Pi * f / float64(rate)
		c := 2 * math.Cos(w)
		var s1, s2 float64
		for _, v := range s {
			s0 := v + c*s1 - s2
			s2, s1 = s1, s0
		}
		p := s1*s1 + s2*s2 - c*s1*s2
		if p > bestP {
			best, bestP = f, p
		}
	}
	if total == 0 {
		return best, 0
	}
	// Power of a pure tone at bin f is about (N/2)^2 * A^2/... ; normalise
	// to a share of the total energy: N*total is the scale of p for a sine.
	return best, 2 * bestP / (float64(len(s)) * total)
}

// rms is the root mean square of s.
func rms(s []float64) float64 {
	var sum float64
	for _, v := range s {
		sum += v * v
	}
	return math.Sqrt(sum / float64(max(1, len(s))))
}
