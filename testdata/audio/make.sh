#!/bin/sh
# make.sh regenerates the audio test files in this directory with real
# encoders (sox, ffmpeg with libmp3lame, aac, libvorbis, libopus). Every file is
# about one second of a 440 Hz sine, mono, 16 kHz where the codec allows it.
# The bitexact flags and -map_metadata -1 keep encoder versions and dates out
# of the files, so a rerun with the same tool versions gives the same bytes.
#
# Usage: sh testdata/audio/make.sh   (from anywhere)
set -eu
cd "$(dirname "$0")"

ff="ffmpeg -hide_banner -loglevel error -y"
bitexact="-map_metadata -1 -fflags +bitexact -flags:a +bitexact"

# PCM WAV, s16le, 16 kHz mono, exactly 16000 frames (1000 ms). -D turns off
# dither and -R makes sox repeatable, so the samples are the same every run.
sox -R -D -n -r 16000 -c 1 -b 16 -e signed-integer tone.wav synth 1 sine 440 gain -3

# MP3 (libmp3lame) with the ID3v2 header ffmpeg writes by default.
$ff -i tone.wav $bitexact -c:a libmp3lame -b:a 32k tone.mp3

# MP3 without ID3 tag and without Xing frame: the file starts with a frame sync.
$ff -i tone.wav $bitexact -c:a libmp3lame -b:a 32k -id3v2_version 0 -write_xing 0 tone-noid3.mp3

# AAC in MP4 (ftyp at offset 4).
$ff -i tone.wav $bitexact -c:a aac -b:a 32k -f ipod tone.m4a

# Raw AAC in ADTS frames.
$ff -i tone.wav $bitexact -c:a aac -b:a 32k -f adts tone.aac

# Vorbis in Ogg.
$ff -i tone.wav $bitexact -c:a libvorbis -q:a 0 -f ogg tone.ogg

# Opus in WebM (EBML magic 1A 45 DF A3).
$ff -i tone.wav $bitexact -c:a libopus -b:a 16k -f webm tone.webm

# Malformed inputs.
: > bad/empty.wav
printf 'This is a plain text file, not audio.\n' > bad/text.txt
# A real one-frame AVI: RIFF header whose form type is "AVI ", not "WAVE".
$ff -f lavfi -i color=c=red:s=2x2:r=1 -frames:v 1 -fflags +bitexact -flags:v +bitexact \
	-map_metadata -1 -c:v rawvideo -pix_fmt bgr24 -f avi bad/riff-not-wave.wav
head -c 3 tone.wav > bad/truncated-header.wav
# A real 2x2 PNG image under an audio name.
$ff -f lavfi -i color=c=red:s=2x2 -frames:v 1 -fflags +bitexact -flags:v +bitexact \
	-map_metadata -1 -c:v png -f image2 bad/png-as-audio.mp3
