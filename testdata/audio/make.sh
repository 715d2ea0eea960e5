#!/bin/sh
# make.sh regenerates the audio test files in this directory with real
# encoders (sox, ffmpeg with libmp3lame, aac, libvorbis, libopus, libx264,
# libvpx) and, for one file, go. The tone.* files are about one second of a
# 440 Hz sine, mono, 16 kHz where the codec allows it; the others a few
# seconds at low bitrates.
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

# Longer files, for durations (store/media, durations.json). "voice" is four
# seconds of a 220-880 Hz sweep with a 3 Hz tremolo, so a VBR encoder has
# something to vary; kept only while this script runs.
voice=$(mktemp --suffix=.wav)
stereo=$(mktemp --suffix=.wav)
cover=$(mktemp --suffix=.png)
live=$(mktemp --suffix=.webm)
trap 'rm -f "$voice" "$stereo" "$cover" "$live"' EXIT
sox -R -D -n -r 16000 -c 1 -b 16 -e signed-integer "$voice" synth 4 sine 220-880 synth 4 sine amod 3 gain -6
video="-f lavfi -i testsrc=s=32x32:r=5:d=4"

# MP3 VBR (libmp3lame -q:a 6) with a Xing header, and MP3 CBR with an Info
# header after an ID3v2.3 tag that holds a 24 KB cover picture, so the first
# frame lies far beyond media.HeadSize.
$ff -i "$voice" $bitexact -c:a libmp3lame -q:a 6 voice-vbr.mp3
$ff -f lavfi -i mandelbrot=s=128x128 -frames:v 1 \
	-fflags +bitexact -flags:v +bitexact -c:v png -pix_fmt rgb24 -f image2 "$cover"
$ff -i "$voice" -i "$cover" -map 0 -map 1 $bitexact -c:a libmp3lame -b:a 24k -c:v copy \
	-id3v2_version 3 -disposition:v attached_pic voice-cover.mp3

# MP4 family: a phone-video stand-in (32x32 H.264 at 5 fps and AAC, moov at
# the end as ffmpeg writes by default), QuickTime (.mov, brand "qt  "),
# 3GPP (AAC: this ffmpeg has no AMR encoder), and fragmented MP4 (empty moov,
# one moof per half second, as Safari's MediaRecorder writes).
$ff $video -i "$voice" $bitexact -c:v libx264 -preset veryslow -crf 45 -pix_fmt yuv420p \
	-c:a aac -b:a 16k phone-video.mp4
$ff $video -i "$voice" $bitexact -c:v libx264 -preset veryslow -crf 45 -pix_fmt yuv420p \
	-c:a aac -b:a 16k -f mov phone-video.mov
$ff -i "$voice" $bitexact -c:a aac -b:a 16k -f 3gp voice.3gp
$ff -i "$voice" $bitexact -c:a aac -b:a 16k -movflags frag_keyframe+empty_moov+default_base_moof \
	-frag_duration 500000 -f mp4 voice-fragmented.m4a
# Old QuickTime without ftyp: the same audio in .mov, with its ftyp atom
# renamed "free" (same size), so the file starts with a free atom, then moov.
$ff -i "$voice" $bitexact -c:a aac -b:a 16k -movflags +faststart -f mov voice-noftyp.mov
printf 'free' | dd of=voice-noftyp.mov bs=1 seek=4 conv=notrunc status=none

# Opus in Ogg (pre-skip in the OpusHead).
$ff -i "$voice" $bitexact -c:a libopus -b:a 12k -f ogg voice.opus

# WebM as browsers' MediaRecorder writes it: no Duration, no Cues, Segment
# and Clusters of unknown size (ffmpeg -live 1, then mediarecorder.go).
$ff -i "$voice" $bitexact -c:a libopus -b:a 12k -live 1 -f webm "$live"
go run mediarecorder.go "$live" voice-mediarecorder.webm

# A phone-video stand-in in WebM: VP8 and Opus, with a Duration element.
$ff $video -i "$voice" $bitexact -c:v libvpx -b:v 16k -c:a libopus -b:a 12k -f webm phone-video.webm

# Matroska that is not WebM (DocType "matroska"): refused.
$ff -i "$voice" $bitexact -c:a libopus -b:a 12k -f matroska voice.mka

# WAV: stereo 48 kHz s16le, one second, with a LIST INFO chunk between fmt
# and data; and mono 8 kHz 24-bit, which ffmpeg writes as
# WAVE_FORMAT_EXTENSIBLE, with bext and LIST chunks before data.
sox -R -D -n -r 48000 -c 2 -b 16 -e signed-integer "$stereo" synth 1 sine 440 sine 660 gain -3
$ff -i "$stereo" $bitexact -c:a pcm_s16le -metadata genre=Speech stereo-48k.wav
$ff -i "$voice" $bitexact -ar 8000 -c:a pcm_s24le -write_bext 1 -metadata genre=Speech voice-bext.wav

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
