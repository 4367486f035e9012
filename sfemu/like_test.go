package sfemu

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// likeRegexp is the reference meaning of a LIKE pattern: % is any run of
// characters, _ one character, the rest literal, over the whole value.
func likeRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range strings.ToLower(pat) {
		switch r {
		case '%':
			b.WriteString(`.*`)
		case '_':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func TestLikeMatch(t *testing.T) {
	for _, tt := range []struct {
		v, pat string
		want   bool
	}{
		{"", "", true}, {"", "%", true}, {"", "_", false}, {"a", "", false},
		{"abc", "abc", true}, {"abc", "ab", false}, {"abc", "a%", true}, {"abc", "%c", true},
		{"abc", "%b%", true}, {"abc", "a_c", true}, {"abc", "a__c", false}, {"abc", "%%%", true},
		{"abcabc", "%abc", true}, {"abcab", "%abc", false}, {"aaa", "%aa%aa", false}, {"aaaa", "%aa%aa", true},
		{"ab", "a%b%", true}, {"ab", "%a%b", true}, {"ab", "%b%a%", false},
		{"héllo", "h_llo", true}, {"héllo", "h__llo", false}, {"日本語", "___", true}, {"日本語", "%本_", true},
		{"Widget", "wid%", true}, {"WIDGET 7", "%get _", true},
		{strings.Repeat("a", 60), strings.Repeat("%a", 30) + "%b", false},
	} {
		if got := compileLike(tt.pat).match(strings.ToLower(tt.v)); got != tt.want {
			t.Errorf("%q LIKE %q = %v, want %v", tt.v, tt.pat, got, tt.want)
		}
		if got := likeRegexp(tt.pat).MatchString(strings.ToLower(tt.v)); got != tt.want {
			t.Errorf("reference: %q LIKE %q = %v, want %v", tt.v, tt.pat, got, tt.want)
		}
	}
}

// TestLikeWorstCaseIsBounded: patterns that make a backtracking matcher
// run for ever take at most len(value) x len(pattern) steps here.
func TestLikeWorstCaseIsBounded(t *testing.T) {
	v := strings.Repeat("a", 4000)
	for _, pat := range []string{
		strings.Repeat("%a", 200) + "%b",
		strings.Repeat("%_", 200) + "b",
		"%" + strings.Repeat("a_", 1000) + "b%",
	} {
		p := compileLike(pat)
		start := time.Now()
		if p.match(v) {
			t.Errorf("%.40q... matched", pat)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%.40q... took %v on one value", pat, d)
		}
	}
}

// FuzzLike checks the matcher against the regular expression that means
// the same, on any value and pattern.
func FuzzLike(f *testing.F) {
	for _, s := range [][2]string{
		{"abc", "a%c"}, {"aaaa", "%aa%aa"}, {"héllo", "h_llo"}, {"", "%"},
		{strings.Repeat("a", 60), "%a%a%a%a%a%a%a%a%b"}, {"x_y%z", "x_y%z"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, v, pat string) {
		if !utf8.ValidString(v) || !utf8.ValidString(pat) || len(pat) > 200 {
			return // regexp reads invalid UTF-8 as U+FFFD; values and SOQL are text
		}
		v = strings.ToLower(v)
		if got, want := compileLike(pat).match(v), likeRegexp(pat).MatchString(v); got != want {
			t.Errorf("%q LIKE %q = %v, the reference says %v", v, pat, got, want)
		}
	})
}
