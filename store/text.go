package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// cleanText checks a piece of user text (a title, a note, a segment, a
// label) and returns it trimmed. It refuses, rather than repairs: invalid
// UTF-8, control characters (line breaks and tabs only where multiline),
// the bidirectional controls that make text display other than it reads
// (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C), text of only invisible
// characters, and text longer than maxRunes. field names the input in the
// message; the message never quotes the text.
func cleanText(field, s string, maxRunes int, multiline bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", errorf(CodeValidation, field+" must be UTF-8")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errorf(CodeValidation, field+" is required")
	}
	if utf8.RuneCountInString(s) > maxRunes {
		return "", errorf(CodeValidation, fmt.Sprintf("%s is longer than %d characters", field, maxRunes))
	}
	visible := false
	for _, r := range s {
		switch {
		case isBidiControl(r):
			return "", errorf(CodeValidation, field+" must not hold bidirectional control characters")
		case r == '\n' || r == '\t' || r == '\r':
			if !multiline {
				return "", errorf(CodeValidation, field+" must not hold control characters")
			}
		case unicode.IsControl(r):
			return "", errorf(CodeValidation, field+" must not hold control characters")
		case unicode.IsSpace(r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Mn, r), unicode.Is(unicode.Me, r),
			r == '\u3164', r == '\u115F', r == '\u1160', r == '\uFFA0', r == '\u2800':
			// white space, format characters (zero-width joiners and the
			// like), lone combining marks and the Hangul fillers and
			// Braille blank that render as nothing
		default:
			visible = true
		}
	}
	if !visible {
		return "", errorf(CodeValidation, field+" must hold visible characters")
	}
	return s, nil
}

func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') || r == '\u200E' || r == '\u200F' || r == '\u061C'
}
