package export

import (
	"fmt"
	"strings"
)

// readme returns README.txt: what each entry is and how to decrypt the
// audio. audioName is "" for a package without audio.
func readme(mode, audioName string) []byte {
	var b strings.Builder
	b.WriteString(`tyst export package
===================

This ZIP file was made by tyst, the newsroom's store for interview audio.
It holds one record (an interview or recording) as it stood when it was
exported, and a signature by which anyone can check, offline, that nothing
in it was changed since: see VERIFY.txt.

Handle it with care: it may identify a source.


Files
-----

transcript.json    The record: its metadata (title, language, dates), the
                   transcript segments and the notes.
audit.json         The record's audit events: what was done to it, and when
                   (metadata only).
`)
	switch {
	case audioName == "":
		b.WriteString("(no audio)         The record had no audio when it was exported.\n")
	case mode == ModeEncrypted:
		fmt.Fprintf(&b, "%-18s The audio, encrypted under the newsroom key. See\n", audioName)
		b.WriteString("                   \"Decrypting audio.bin\" below.\n")
	default:
		fmt.Fprintf(&b, "%-18s The audio, NOT encrypted: the original file as it was\n", audioName)
		b.WriteString("                   uploaded. Anyone who has this package can listen to it.\n")
	}
	b.WriteString(`manifest.json      The package id, when it was made, and the SHA-256 hash of
                   every other file (under "files", and again under
                   "integrity_hashes"; "audio_sha256" is the hash of the
                   original audio).
manifest.json.sig  The newsroom's signature of manifest.json (an OpenSSH
                   signature, namespace tyst-export-v1).
allowed_signers    The public key that made the signature, as one line for
                   ssh-keygen. Trust the fingerprint the newsroom publishes,
                   not this file alone.
VERIFY.txt         How to check the signature and the hashes.
README.txt         This file.
`)
	if mode == ModeEncrypted && audioName != "" {
		b.WriteString(decryptText)
	}
	return []byte(b.String())
}

// decryptText explains audio.bin: the format of DESIGN §4 in plain words.
const decryptText = `

Decrypting audio.bin
--------------------

You need the newsroom key (a Fernet key: 32 bytes in base64url, the form of
PROJECT_FILES_KEY). With the tyst program:

    tyst decrypt --key-file newsroom.key < audio.bin > audio

or set PROJECT_FILES_KEY to the key and leave out --key-file. The result is
the original audio file; its SHA-256 equals "audio_sha256" in manifest.json
(sha256sum audio). This checks that without writing the audio anywhere, and
checks the signature against the fingerprint the newsroom publishes:

    tyst verify-package package.zip --fingerprint SHA256:... --key-file newsroom.key

Without tyst, any Fernet library can do it (https://github.com/fernet/spec).
audio.bin is text: one Fernet token per line, each line ending in "\n".
Decrypt each line with the key (without a time-to-live check: every token
carries the time 1970-01-01 on purpose, so the file shows no dates). Each
decrypted token starts with a header of 26 bytes:

    byte 0        format version, 1
    byte 1        flags: bit 0 (value 1) marks the last chunk,
                  bit 1 (value 2) marks a padding chunk
    bytes 2-9     the chunk's index, an unsigned big-endian number, from 0
    bytes 10-25   the file id: the same 16 random bytes in every chunk

Drop the header; what follows is the chunk's data, at most 1 MiB
(1048576 bytes). Join the data of the chunks in the order of their lines,
leaving out padding chunks (they only hide the audio's exact size). The
file is whole when the indexes count 0, 1, 2, ... without a gap, every file
id is the same, the last line has the last-chunk flag and nothing follows
it. Then compare the SHA-256 of the result with "audio_sha256".
`

// verifyText returns VERIFY.txt: how an editor or a lawyer checks the
// package with ssh-keygen and sha256sum, offline.
func verifyText(audioName string) []byte {
	var b strings.Builder
	b.WriteString(`How to check this package
=========================

You can check, offline and without tyst, that this package is what the
newsroom's tyst made and signed: that no file in it was changed, added or
removed since. You need ssh-keygen from OpenSSH 8.1 or newer, which comes
with Linux, macOS and current Windows 10 and 11 (ssh-keygen -V or ssh -V
shows the version).

Unzip the package into a folder of its own and open a terminal (on Windows:
the Command Prompt, cmd.exe) in that folder.


1. Check the signature of manifest.json

    ssh-keygen -Y verify -f allowed_signers -I tyst -n tyst-export-v1 -s manifest.json.sig < manifest.json

On Windows, run this in the Command Prompt (cmd.exe), not in PowerShell:
PowerShell has no "<" and its pipes can change the bytes. From PowerShell,
wrap it: cmd /c "ssh-keygen ... < manifest.json".

A good signature prints:

    Good "tyst-export-v1" signature for tyst with ED25519 key SHA256:...

Anything else (for example "Could not verify signature") means that
manifest.json or its signature was changed, or was not made by that key:
do not trust the package.


2. Check that the key is the newsroom's

allowed_signers came inside this package, so step 1 alone proves only that
whoever made the package held that key. Compare the fingerprint printed in
step 1 (SHA256:...) with the one the newsroom publishes (on its web site,
or ask its IT through a channel you trust; tyst prints it with "tyst
signing-key"). Every character must be the same.

Better still, use the allowed_signers file the newsroom publishes instead
of the one in this package:

    ssh-keygen -Y verify -f newsroom_allowed_signers -I tyst -n tyst-export-v1 -s manifest.json.sig < manifest.json

"ssh-keygen -l -f allowed_signers" does not work: the file is not a plain
public key file. On Linux and macOS this prints the key's fingerprint:

    cut -d' ' -f3- allowed_signers | ssh-keygen -l -f -


3. Check every file against manifest.json

manifest.json lists the SHA-256 hash of every other file under "files".
Compute the hashes:

    Linux:    sha256sum *
    macOS:    shasum -a 256 *
    Windows:  certutil -hashfile transcript.json SHA256   (once per file)

Each file's hash must equal its value in manifest.json. A file whose hash
differs was changed; a file that manifest.json does not list was added.
(manifest.json and manifest.json.sig are not listed: step 1 covers them.)
`)
	if audioName == NameAudioEncrypted {
		b.WriteString(`
The hash of audio.bin is "audio_file_sha256". After decrypting it (see
README.txt), the hash of the audio must equal "audio_sha256".
`)
	} else if audioName != "" {
		fmt.Fprintf(&b, `
The hash of %s is both "audio_file_sha256" and "audio_sha256", the hash
of the original audio.
`, audioName)
	}
	b.WriteString(`

With tyst
---------

    tyst verify-package package.zip --allowed-signers newsroom_allowed_signers

or, with the fingerprint the newsroom publishes instead of its file,

    tyst verify-package package.zip --fingerprint SHA256:...

does all of the above without unzipping and prints a JSON report; with
--key-file (the newsroom key) it also decrypts the audio in memory and
checks "audio_sha256". Its exit status:

    0  good: intact, and signed by the newsroom's key
    1  bad: changed, damaged, or signed by another key
    2  the command line is wrong
    3  intact, but the signer was NOT checked: neither --allowed-signers
       nor --fingerprint was given, and the key inside the package proves
       nothing alone (a forger can put his own there)

Only 0 means that the package is the newsroom's, unchanged.
`)
	return []byte(b.String())
}
