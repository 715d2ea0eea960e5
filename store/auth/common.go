package auth

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"
)

// commonPasswordsTxt is the 10,000 most common passwords, one a line,
// lower-cased, most common first: the first 10,000 entries of the
// "passwords" frequency list of zxcvbn 4.4.2 (npm package zxcvbn,
// lib/frequency_lists.js; MIT licence, Copyright (c) 2012-2016 Dan Wheeler
// and Dropbox, Inc.), which zxcvbn derived from Mark Burnett's corpus of 10
// million passwords (the "Xato" list). Regenerate with:
//
//	npm pack zxcvbn@4.4.2 && tar xzf zxcvbn-4.4.2.tgz
//	node -e 'const p=require("./package/lib/frequency_lists.js").passwords.slice(0,10000);
//	  require("fs").writeFileSync("common_passwords.txt", p.map(x=>x.toLowerCase()).join("\n")+"\n")'
//
//go:embed common_passwords.txt
var commonPasswordsTxt string

// commonPasswords is the set of listed passwords that the length rule alone
// would let through (most of the list is shorter), built once on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{})
	for line := range strings.Lines(commonPasswordsTxt) {
		if p := strings.TrimSuffix(line, "\n"); utf8.RuneCountInString(p) >= minPasswordRunes {
			m[p] = struct{}{}
		}
	}
	return m
})

// isCommonPassword reports whether password, lower-cased and without
// surrounding white space, is on the list.
func isCommonPassword(password string) bool {
	_, ok := commonPasswords()[strings.ToLower(strings.TrimSpace(password))]
	return ok
}
