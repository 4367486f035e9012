package sfemu

import (
	"strings"
	"unicode/utf8"
)

// likePattern is a compiled SOQL LIKE pattern: % matches any run of
// characters, _ exactly one character, and matching ignores case (the
// pattern is stored lower-cased; values are lower-cased before matching).
//
// The pattern is split at its % signs into segments. A value matches when
// the first segment matches at its start, the last at its end, and the
// ones between match, in order, without overlapping. Since a % absorbs
// anything, taking the leftmost match of each middle segment never loses a
// match, so no choice is ever revisited: the time is at most
// len(value) × len(pattern) character steps (strings.Index for segments
// without _), never exponential as a recursive matcher's is.
type likePattern struct {
	segs []likeSeg // len(segs) == number of % + 1 (after merging runs of %)
}

// likeSeg is one part of a pattern between % signs.
type likeSeg struct {
	text  string // lower-cased, with '_' for the one-character wildcard
	runes int    // characters it matches (a fixed number)
	wild  bool   // contains _
}

func compileLike(pat string) *likePattern {
	pat = strings.ToLower(pat)
	parts := strings.Split(pat, "%")
	p := &likePattern{}
	for i, s := range parts {
		// Runs of % are one %: drop the empty segments between them, but
		// keep the first and last (an empty anchor at either end).
		if s == "" && i > 0 && i < len(parts)-1 {
			continue
		}
		p.segs = append(p.segs, likeSeg{text: s, runes: utf8.RuneCountInString(s), wild: strings.Contains(s, "_")})
	}
	return p
}

// match reports whether the lower-cased value v matches.
func (p *likePattern) match(v string) bool {
	if len(p.segs) == 1 {
		end, ok := p.segs[0].matchAt(v, 0)
		return ok && end == len(v)
	}
	first, last := p.segs[0], p.segs[len(p.segs)-1]
	pos, ok := first.matchAt(v, 0)
	if !ok {
		return false
	}
	for _, sg := range p.segs[1 : len(p.segs)-1] {
		if pos, ok = sg.find(v, pos); !ok {
			return false
		}
	}
	// The last segment matches a fixed number of characters at the end.
	start := len(v)
	for range last.runes {
		if start <= pos {
			return false
		}
		_, w := utf8.DecodeLastRuneInString(v[:start])
		start -= w
	}
	if start < pos {
		return false
	}
	end, ok := last.matchAt(v, start)
	return ok && end == len(v)
}

// matchAt matches the segment at byte offset i of v and returns where the
// match ends.
func (sg likeSeg) matchAt(v string, i int) (int, bool) {
	if !sg.wild {
		if strings.HasPrefix(v[i:], sg.text) {
			return i + len(sg.text), true
		}
		return 0, false
	}
	for j := 0; j < len(sg.text); j++ {
		if i >= len(v) {
			return 0, false
		}
		if sg.text[j] == '_' {
			i += runeLen(v, i)
			continue
		}
		if v[i] != sg.text[j] {
			return 0, false
		}
		i++
	}
	return i, true
}

// find returns the end of the leftmost match of the segment at or after
// byte offset from.
func (sg likeSeg) find(v string, from int) (int, bool) {
	if !sg.wild {
		k := strings.Index(v[from:], sg.text)
		if k < 0 {
			return 0, false
		}
		return from + k + len(sg.text), true
	}
	for i := from; i < len(v); {
		if end, ok := sg.matchAt(v, i); ok {
			return end, true
		}
		i += runeLen(v, i)
	}
	return 0, false
}

// runeLen is the length of the character at byte offset i of v.
func runeLen(v string, i int) int {
	if v[i] < utf8.RuneSelf {
		return 1
	}
	_, w := utf8.DecodeRuneInString(v[i:])
	return w
}
