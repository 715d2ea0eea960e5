package media_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"tyst/store/media"
)

// durationCase is a made-up or rewritten file and what Duration must say.
type durationCase struct {
	name string
	file []byte
	ms   int64 // when ok
	ok   bool
}

// runDurationCases checks each case through a counting reader: the result,
// no error, and no more reads than the file has buffers (plus a few).
func runDurationCases(t *testing.T, mimeType string, cases []durationCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReaderAt{r: bytes.NewReader(tt.file)}
			ms, ok, err := media.Duration(r, int64(len(tt.file)), mimeType)
			if err != nil {
				t.Fatalf("err=%v", err)
			}
			if ms != tt.ms || ok != tt.ok {
				t.Fatalf("Duration=(%d, %v), want (%d, %v)", ms, ok, tt.ms, tt.ok)
			}
			if max := int64(len(tt.file))/media.ReadAhead + 4; r.reads.Load() > max {
				t.Errorf("%d reads of a %d-byte file, want at most %d", r.reads.Load(), len(tt.file), max)
			}
		})
	}
}

// cat concatenates byte slices and strings.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			b = append(b, p...)
		case string:
			b = append(b, p...)
		default:
			panic("cat: []byte or string")
		}
	}
	return b
}

// be32 and be64 are big-endian bytes of v.
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestDuration_WAV(t *testing.T) {
	pcm := pcmFmt(1, 1, 16000)
	second := strings.Repeat("\x00", 32000)
	// A "data" chunk far beyond HeadSize: WAVDurationMS cannot see it,
	// Duration walks to it.
	late := wavFile(bodySize, "fmt ", pcm, "LIST", strings.Repeat("i", 20000), "data", second)
	if ms, ok := media.WAVDurationMS(late[:media.HeadSize], int64(len(late))); ok || ms != 0 {
		t.Fatalf("WAVDurationMS=(%d, %v), want (0, false): data lies past the head", ms, ok)
	}
	var tiny []string // 20000 empty chunks before fmt and data
	for range 20000 {
		tiny = append(tiny, "junk", "")
	}
	runDurationCases(t, media.WAV, []durationCase{
		{"DataAfterLargeLIST", late, 1000, true},
		{"ManyEmptyChunks", wavFile(bodySize, append(tiny, "fmt ", pcm, "data", second)...), 1000, true},
		{"CutChunkHeader", wavFile(bodySize, "fmt ", pcm, "junk", "")[:36+4], 0, false},
		{"HugeChunkBeforeData", cat(wavFile(bodySize, "fmt ", pcm), "junk\xf0\xff\xff\xff", "data\x00\x7d\x00\x00", second), 0, false},
		{"NoFmt", wavFile(bodySize, "data", second), 0, false},
		{"NotRIFF", []byte("RIFX\x00\x00\x00\x00WAVEfmt "), 0, false},
	})
}

// mp3Frames returns tone-noid3.mp3: 30 CBR frames of 144 bytes, MPEG-2
// layer III, 16 kHz, 576 samples each (36 ms), and no header.
func mp3Frames(t *testing.T) []byte {
	t.Helper()
	b := mustReadFile(t, "tone-noid3.mp3")
	if len(b) != 30*144 || string(b[:4]) != "\xff\xf3\x48\xc4" {
		t.Fatalf("tone-noid3.mp3 is not 30 frames of 144 bytes")
	}
	return b
}

func TestDuration_MP3(t *testing.T) {
	frames := mp3Frames(t)
	// A Fraunhofer VBRI header in a frame of its own: 1000 frames.
	vbri := make([]byte, 144)
	copy(vbri, frames[:4])
	copy(vbri[36:], "VBRI\x00\x01\x00\x00\x00\x50")
	copy(vbri[46:], cat(be32(1000*144), be32(1000)))
	// tone.mp3's Info header counts 30 frames; with the frame-count flag
	// cleared, the walk counts every frame, the Info frame too (31).
	info := mustReadFile(t, "tone.mp3")
	i := bytes.Index(info, []byte("Info"))
	noCount := bytes.Clone(info)
	noCount[i+7] &^= 1
	// A frame with the free-format bitrate index: no length, no duration.
	free := bytes.Clone(frames)
	for off := 0; off < len(free); off += 144 {
		free[off+2] &^= 0xF0
	}
	id3 := func(n int) []byte { // an ID3v2.4 tag of n bytes of body
		return cat("ID3\x04\x00\x00", []byte{byte(n >> 21 & 0x7F), byte(n >> 14 & 0x7F), byte(n >> 7 & 0x7F), byte(n & 0x7F)}, make([]byte, n))
	}
	runDurationCases(t, media.MP3, []durationCase{
		{"FrameWalk", frames, 1080, true},
		{"InfoFrameCount", info, 1080, true},
		{"InfoWithoutFrameCountWalks", noCount, 1116, true},
		{"VBRIFrameCount", cat(vbri, frames), 36000, true},
		{"LargeID3Tag", cat(id3(300_000), frames), 1080, true},
		{"TwoID3Tags", cat(id3(100), id3(5000), frames), 1080, true},
		{"JunkAfterTag", cat(id3(100), strings.Repeat("\x00", 700), frames), 1080, true},
		{"JunkBetweenFrames", cat(frames[:144*10], strings.Repeat("j", 500), frames[144*10:]), 1080, true},
		{"ID3v1AtEnd", cat(frames, "TAG", strings.Repeat("t", 125)), 1080, true},
		{"APEv2AtEnd", cat(frames, "APETAGEX", strings.Repeat("a", 200)), 1080, true},
		{"CutLastFrameCounts", frames[:len(frames)-50], 1080, true},
		{"FreeFormat", free, 0, false},
		{"TagOnly", id3(1000), 0, false},
		{"TagClaimingMore", cat("ID3\x04\x00\x00\x7f\x7f\x7f\x7f", frames), 0, false},
		{"NoSyncWithinReach", cat(id3(10), make([]byte, 70_000), frames), 0, false},
		{"LoneFrameSyncInJunk", cat(id3(10), "\xff\xf3\x48\xc4", make([]byte, 3000)), 0, false},
	})

	t.Run("ManyFramesLinear", func(t *testing.T) {
		// The smallest frames there are (MPEG-2.5 layer III, 8 kbit/s,
		// 12 kHz: 48 bytes), 200000 of them.
		one := make([]byte, 48)
		copy(one, "\xff\xe3\x14\xc4")
		runDurationCases(t, media.MP3, []durationCase{
			{"200000Frames", bytes.Repeat(one, 200_000), 200_000 * 576 * 1000 / 12000, true},
		})
	})
}

func TestDuration_AAC(t *testing.T) {
	aac := mustReadFile(t, "tone.aac") // 17 frames of 1024 samples at 16 kHz
	// 1M frames that are only their 7-byte header, at 16 kHz.
	tiny := bytes.Repeat([]byte{0xFF, 0xF1, 0x60, 0x40, 0x00, 0xFF, 0xFC}, 1_000_000)
	runDurationCases(t, media.AAC, []durationCase{
		{"Frames", aac, 1088, true},
		{"ID3BeforeADTS", cat(mustReadFile(t, "tone.mp3")[:20], aac), 1088, true},
		{"CutLastFrameNotCounted", aac[:len(aac)-10], 1024, true},
		{"ID3v1AtEnd", cat(aac, "TAG", strings.Repeat("t", 125)), 1088, true},
		{"MillionHeaderOnlyFrames", tiny, 1_000_000 * 1024 * 1000 / 16000, true},
		{"LengthShorterThanHeader", []byte{0xFF, 0xF1, 0x60, 0x40, 0x00, 0x1F, 0xFC}, 0, false},
		{"NoADTS", []byte("\x00\x00\x00\x00\x00\x00\x00\x00"), 0, false},
	})
}

// mp4Box returns a box of type typ holding the parts.
func mp4Box(typ string, parts ...any) []byte {
	body := cat(parts...)
	return cat(be32(uint32(8+len(body))), typ, body)
}

// mvhd0 and mdhd0 are version-0 time headers.
func mvhd0(timescale, duration uint32) []byte {
	return mp4Box("mvhd", make([]byte, 12), be32(timescale), be32(duration), make([]byte, 80))
}
func mdhd0(timescale, duration uint32) []byte {
	return mp4Box("mdhd", make([]byte, 12), be32(timescale), be32(duration), make([]byte, 4))
}

// trak returns a track of the given id and handler.
func trak(id uint32, handler string, mdhd []byte) []byte {
	return mp4Box("trak",
		mp4Box("tkhd", "\x00\x00\x00\x03", make([]byte, 8), be32(id), make([]byte, 64)),
		mp4Box("mdia", mdhd, mp4Box("hdlr", make([]byte, 8), handler, make([]byte, 13))))
}

func TestDuration_MP4(t *testing.T) {
	ftyp := mp4Box("ftyp", "isom\x00\x00\x02\x00isomiso2mp41")
	phone := mustReadFile(t, "phone-video.mp4")
	boxes := mp4Boxes(t, phone)
	mdatAt := len(boxes["ftyp"])
	// A fragment of track 1 with the given tfdt body (none if nil) and a
	// trun with the given flags and entries.
	moof := func(tfdt []byte, trunFlags string, entries ...uint32) []byte {
		var e []byte
		for _, d := range entries {
			e = append(e, be32(d)...)
		}
		var parts []any
		parts = append(parts, mp4Box("tfhd", "\x00\x02\x00\x00", be32(1)))
		if tfdt != nil {
			parts = append(parts, mp4Box("tfdt", tfdt))
		}
		parts = append(parts, mp4Box("trun", trunFlags, be32(uint32(len(entries))), e))
		return mp4Box("moof", mp4Box("mfhd", make([]byte, 8)), mp4Box("traf", parts...))
	}
	fragMoovMvhd := func(mvhd []byte) []byte {
		return mp4Box("moov", mvhd, trak(1, "soun", mdhd0(16000, 0)),
			mp4Box("mvex", mp4Box("trex", make([]byte, 4), be32(1), be32(1), be32(1024), make([]byte, 8))))
	}
	fragMoov := fragMoovMvhd(mvhd0(1000, 0))
	twoFragments := cat(moof(cat("\x00\x00\x00\x00", be32(0)), "\x00\x00\x01\x00", 1024, 1024, 1024),
		moof(cat("\x01\x00\x00\x00", be64(3072)), "\x00\x00\x01\x00", 1024, 1024, 1000))
	runDurationCases(t, media.MP4, []durationCase{
		{"MvhdV0", cat(ftyp, mp4Box("moov", mvhd0(600, 1200))), 2000, true},
		{"MvhdV1", cat(ftyp, mp4Box("moov", mp4Box("mvhd", "\x01\x00\x00\x00", make([]byte, 16), be32(1000), be64(5000), make([]byte, 80)))), 5000, true},
		{"MvhdZeroTakesAudioMdhd", cat(ftyp, mp4Box("moov", mvhd0(1000, 0), trak(1, "vide", mdhd0(90000, 900000)), trak(2, "soun", mdhd0(16000, 32000)))), 2000, true},
		{"MvhdUnknownTakesLongestTrack", cat(ftyp, mp4Box("moov", mvhd0(1000, 0xFFFFFFFF), trak(1, "vide", mdhd0(90000, 270000)), trak(2, "vide", mdhd0(90000, 90000)))), 3000, true},
		{"MoovAfterMdatWith64BitSize", cat(ftyp, "\x00\x00\x00\x01mdat", be64(16+100_000), make([]byte, 100_000), mp4Box("moov", mvhd0(1000, 7000))), 7000, true},
		{"NoFtyp", cat(mp4Box("wide"), mp4Box("moov", mvhd0(1000, 7000))), 7000, true},
		{"Fragments", cat(ftyp, fragMoov, twoFragments), 6120 * 1000 / 16000, true},
		// ffmpeg's frag_keyframe without empty_moov: mvhd covers the
		// samples in moov only.
		{"FragmentsLongerThanMvhd", cat(ftyp, fragMoovMvhd(mvhd0(1000, 64)), twoFragments), 6120 * 1000 / 16000, true},
		{"MvhdLongerThanFragments", cat(ftyp, fragMoovMvhd(mvhd0(1000, 900)), twoFragments), 900, true},
		{"FragmentsWithoutTfdtAddUp", cat(ftyp, fragMoov, moof(nil, "\x00\x00\x01\x00", 1024, 1024), moof(nil, "\x00\x00\x00\x00", 0, 0, 0, 0)), 6 * 1024 * 1000 / 16000, true},
		{"FragmentsMehd", cat(ftyp, mp4Box("moov", mvhd0(1000, 0), mp4Box("mvex", mp4Box("mehd", make([]byte, 4), be32(9000))))), 9000, true},
		{"TrunCountLargerThanBox", cat(ftyp, fragMoov, mp4Box("moof", mp4Box("traf", mp4Box("tfhd", "\x00\x02\x00\x00", be32(1)), mp4Box("trun", "\x00\x00\x01\x00", be32(0xFFFFFFFF), be32(16000))))), 1000, true},
		{"CutBeforeMoov", phone[:mdatAt+1000], 0, false},
		{"MdatToEndNoMoov", cat(ftyp, "\x00\x00\x00\x00mdat", make([]byte, 1000)), 0, false},
		{"BoxClaiming2To63", cat(ftyp, "\x00\x00\x00\x01mdat", be64(1<<63-1), make([]byte, 100)), 0, false},
		{"MoovChildClaimingMore", cat(ftyp, mp4Box("moov", "\xff\xff\xff\xfftrak", make([]byte, 100))), 0, false},
		{"BoxSmallerThanHeader", cat(ftyp, "\x00\x00\x00\x04moov"), 0, false},
		{"ZeroTimescale", cat(ftyp, mp4Box("moov", mvhd0(0, 1200))), 0, false},
	})
}

// oggPages returns the offsets of the pages of an Ogg file.
func oggPages(b []byte) []int {
	var at []int
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("OggS"))
		if j < 0 {
			return at
		}
		at = append(at, i+j)
		i += j + 4
	}
}

func TestDuration_Ogg(t *testing.T) {
	vorbis := mustReadFile(t, "tone.ogg")
	opus := mustReadFile(t, "voice.opus")
	pages := oggPages(vorbis)
	last := pages[len(pages)-1]
	// The last page with a wrong checksum: the page before it is the last.
	badCRC := bytes.Clone(vorbis)
	badCRC[len(badCRC)-1] ^= 0xFF
	// 1 MiB of pages that look like the stream's but fail their checksum,
	// after the real ones: the search gives up, cheaply.
	fake := bytes.Clone(vorbis[last:])
	fake[22] ^= 0xFF
	tail := bytes.Repeat(fake, 1<<20/len(fake)+1)
	// Opus's granule position, read the same way, less its pre-skip.
	opusSkip := int64(binary.LittleEndian.Uint16(opus[oggPages(opus)[0]+28+10:]))
	opusGranule := int64(binary.LittleEndian.Uint64(opus[oggPages(opus)[len(oggPages(opus))-1]+6:]))
	runDurationCases(t, media.OGG, []durationCase{
		{"Vorbis", vorbis, 1000, true},
		{"OpusLessPreSkip", opus, (opusGranule - opusSkip) * 1000 / 48000, true},
		{"LastPageBadChecksum", badCRC, int64(binary.LittleEndian.Uint64(vorbis[pages[len(pages)-2]+6:])) * 1000 / 16000, true},
		{"CutMidLastPage", vorbis[:len(vorbis)-10], int64(binary.LittleEndian.Uint64(vorbis[pages[len(pages)-2]+6:])) * 1000 / 16000, true},
		{"TailOfBadPages", cat(vorbis, tail), 0, false},
		{"HeadersOnlyLastZero", vorbis[:pages[2]], 0, true},
		{"NoBOS", vorbis[pages[1]:], 0, false},
		{"UnknownCodec", cat(vorbis[:28], "\x01theora", vorbis[35:]), 0, false},
	})
}

// voidDuration returns a WebM file with its 8-byte Duration element turned
// into a Void element of the same length.
func voidDuration(t *testing.T, b []byte) []byte {
	t.Helper()
	i := bytes.Index(b, []byte{0x44, 0x89, 0x88})
	if i < 0 {
		t.Fatal("no 8-byte Duration element")
	}
	b = bytes.Clone(b)
	copy(b[i:], cat("\xec\x40\x08", make([]byte, 8)))
	return b
}

func TestDuration_WebM(t *testing.T) {
	rec := mustReadFile(t, "voice-mediarecorder.webm")
	full := mustDuration(t, "voice-mediarecorder.webm", media.WebM)
	header := mustReadFile(t, "tone.webm")[:0x28] // EBML header, doctype webm
	if !bytes.Contains(header, []byte("webm")) {
		t.Fatal("tone.webm does not start with its EBML header")
	}
	segment := func(parts ...any) []byte {
		return cat(header[:bytes.Index(header, []byte{0x18, 0x53, 0x80, 0x67})], "\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff", cat(parts...))
	}
	info := func(scale uint32, dur string) []byte {
		body := cat("\x2a\xd7\xb1\x84", be32(scale), dur)
		return cat("\x15\x49\xa9\x66", []byte{0x80 | byte(len(body))}, body)
	}
	// A cluster of unknown size at timecode 1000 with one SimpleBlock of
	// track 1 at +500 holding a 20 ms Opus packet (TOC 0xFC: CELT config
	// 31, 20 ms, one frame).
	cluster := cat("\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff", "\xe7\x82\x03\xe8", "\xa3\x85\x81\x01\xf4\x80\xfc")
	tracks := cat("\x16\x54\xae\x6b\x8d", "\xae\x8b", "\xd7\x81\x01", "\x86\x86A_OPUS")
	runDurationCases(t, media.WebM, []durationCase{
		// ffprobe: packets from -0.002 s to 1.019 s.
		{"KnownSizeClustersWithoutDuration", voidDuration(t, mustReadFile(t, "tone.webm")), 1021, true},
		{"DurationFloat32", segment(info(1_000_000, "\x44\x89\x84\x45\x9c\x40\x00")), 5000, true},
		{"DurationTimecodeScale", segment(info(1_000, "\x44\x89\x88\x41\x12\x4f\x80\x00\x00\x00\x00")), 300, true},
		{"BlockWithOpusTOC", segment(tracks, cluster), 1520, true},
		{"BlockWithoutTracks", segment(cluster), 1500, true},
		{"BlockGroupDuration", segment(cat("\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff", "\xe7\x82\x03\xe8", "\xa0\x89", "\xa1\x84\x81\x00\x0a\x00", "\x9b\x81\x64")), 1110, true},
		{"NaNDuration", segment(info(1_000_000, "\x44\x89\x84\x7f\xc0\x00\x00")), 0, false},
		{"HugeElement", segment("\xec\x01\xff\xff\xff\xff\xff\xff\xfe"), 0, false},
		{"UnknownSizeOtherElement", segment("\x12\x54\xc3\x67\x01\xff\xff\xff\xff\xff\xff\xff", cluster), 0, false},
		{"NoSegment", header, 0, false},
		{"NotEBML", []byte("\x1a\x45\xdf\xa3\xff"), 0, false},
	})

	// Cut in half, a MediaRecorder file still says how long its first half
	// lasts.
	ms, ok, err := media.Duration(bytes.NewReader(rec[:len(rec)/2]), int64(len(rec)/2), media.WebM)
	if err != nil || !ok || ms <= full/3 || ms >= full*2/3 {
		t.Errorf("half a MediaRecorder file: Duration=(%d, %v, %v), want about %d", ms, ok, err, full/2)
	}
}
