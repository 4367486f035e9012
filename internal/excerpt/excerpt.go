// Package excerpt bounds the user values that messages echo, so that a
// 10 MB value in a config file or a request yields a one-line error, not
// 10 MB of output. Every package of sfmigrate quotes values through it.
package excerpt

import (
	"strconv"
	"unicode/utf8"
)

// Limit is how many bytes of a value a message shows.
const Limit = 120

// Of returns s when it has at most Limit bytes; otherwise its first Limit
// bytes (cut at a character boundary) followed by "… (N bytes)", N being
// the length of the whole value.
func Of(s string) string { return N(s, Limit) }

// N is Of with a limit of n bytes.
func N(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return head(s, n) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// Quote returns s as a Go-quoted string when it has at most Limit bytes;
// otherwise the quoted first Limit bytes followed by "… (N bytes)". It is
// what %q would print, bounded.
func Quote(s string) string {
	if len(s) <= Limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(head(s, Limit)) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// head is s cut to at most n bytes without splitting a UTF-8 character.
func head(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
