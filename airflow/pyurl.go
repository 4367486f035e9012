package airflow

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file reproduces the parts of Python's urllib.parse that Airflow's
// Connection._parse_from_uri relies on (urlsplit, its username / password /
// hostname / port properties, unquote and parse_qsl), so that a connection
// URI means here exactly what it means to Airflow. Go's net/url is stricter
// (it rejects e.g. "%2F" in a host) and would turn URIs Airflow accepts into
// errors.

// splitResult is Python's urllib.parse.SplitResult.
type splitResult struct {
	scheme, netloc, path, query, fragment string
}

// urlsplit follows CPython 3.11+ urllib.parse.urlsplit with
// allow_fragments=True.
func urlsplit(url string) (splitResult, error) {
	// Leading C0 control characters and spaces are stripped; tab, CR and LF
	// are removed everywhere (WHATWG "unsafe bytes").
	url = strings.TrimLeftFunc(url, func(r rune) bool { return r <= ' ' })
	url = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(url)

	var r splitResult
	if i := strings.IndexByte(url, ':'); i > 0 && isASCIIAlpha(url[0]) && isSchemeChars(url[:i]) {
		r.scheme = strings.ToLower(url[:i])
		url = url[i+1:]
	}
	if strings.HasPrefix(url, "//") {
		end := len(url)
		for _, c := range "/?#" {
			if j := strings.IndexRune(url[2:], c); j >= 0 && j+2 < end {
				end = j + 2
			}
		}
		r.netloc, url = url[2:end], url[end:]
		open, closed := strings.Contains(r.netloc, "["), strings.Contains(r.netloc, "]")
		if open != closed {
			return r, errInvalidIPv6
		}
		if open {
			_, after, _ := strings.Cut(r.netloc, "[")
			host, _, _ := strings.Cut(after, "]")
			if err := checkBracketedHost(host); err != nil {
				return r, err
			}
		}
	}
	if i := strings.IndexByte(url, '#'); i >= 0 {
		url, r.fragment = url[:i], url[i+1:]
	}
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url, r.query = url[:i], url[i+1:]
	}
	r.path = url
	if err := checkNetloc(r.netloc); err != nil {
		return r, err
	}
	return r, nil
}

// checkBracketedHost is CPython's _check_bracketed_host: brackets may only
// hold an IPv6 address or an IPvFuture literal.
func checkBracketedHost(h string) error {
	if strings.HasPrefix(h, "v") {
		if !ipvFuture.MatchString(h) {
			return uriError("invalid IPvFuture address in brackets")
		}
		return nil
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return uriError("brackets in the host must hold an IPv6 address")
	}
	if a.Is4() {
		return uriError("an IPv4 address cannot be in brackets")
	}
	return nil
}

var ipvFuture = regexp.MustCompile(`\Av[a-fA-F0-9]+\..+\z`)

// checkNetloc is CPython's _checknetloc: reject non-ASCII characters that
// turn into URL delimiters under NFKC normalisation (e.g. U+2100 "a/c").
func checkNetloc(netloc string) error {
	if isASCII(netloc) {
		return nil
	}
	n := strings.NewReplacer("@", "", ":", "", "#", "", "?", "").Replace(netloc)
	n2 := norm.NFKC.String(n)
	if n == n2 {
		return nil
	}
	if strings.ContainsAny(n2, "/?#@:") {
		return uriError("the host part contains characters that become '/', '?', '#', '@' or ':' under Unicode NFKC normalisation")
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

type uriError string

func (e uriError) Error() string { return string(e) }

const errInvalidIPv6 = uriError("invalid IPv6 address: '[' and ']' do not match")

func isASCIIAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isSchemeChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isASCIIAlpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// userinfo returns SplitResult.username and .password; ok flags tell
// Python's None apart from "".
func (r splitResult) userinfo() (user string, userOK bool, pass string, passOK bool) {
	i := strings.LastIndexByte(r.netloc, '@')
	if i < 0 {
		return "", false, "", false
	}
	info := r.netloc[:i]
	if j := strings.IndexByte(info, ':'); j >= 0 {
		return info[:j], true, info[j+1:], true
	}
	return info, true, "", false
}

// hostinfo returns the raw hostname and port text of the netloc, as
// SplitResult._hostinfo does.
func (r splitResult) hostinfo() (host, port string, hasPort bool) {
	hi := r.netloc
	if i := strings.LastIndexByte(hi, '@'); i >= 0 {
		hi = hi[i+1:]
	}
	// Anything before "[" is ignored, as CPython's _hostinfo does.
	if _, bracketed, ok := strings.Cut(hi, "["); ok {
		host, rest, _ := strings.Cut(bracketed, "]")
		_, port, _ = strings.Cut(rest, ":")
		return host, port, port != ""
	}
	if j := strings.IndexByte(hi, ':'); j >= 0 {
		return hi[:j], hi[j+1:], hi[j+1:] != ""
	}
	return hi, "", false
}

// hostname is SplitResult.hostname, "" for None: lower-cased up to the
// first "%" (CPython keeps an IPv6 zone id, and so everything after a "%",
// as written).
func (r splitResult) hostname() string {
	h, _, _ := r.hostinfo()
	before, zone, hasZone := strings.Cut(h, "%")
	if hasZone {
		return strings.ToLower(before) + "%" + zone
	}
	return strings.ToLower(h)
}

// port is SplitResult.port: 0 with ok=false for None, an error where Python
// raises ValueError.
func (r splitResult) port() (int, bool, error) {
	_, p, has := r.hostinfo()
	if !has {
		return 0, false, nil
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			// The text is not shown: when a password holds an unencoded
			// "/", what Python takes for the port is part of the password.
			return 0, false, uriError("the port (after the last ':' of the host part) is not a number")
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil || n > 65535 {
		return 0, false, uriError("the port is out of range 0-65535")
	}
	return n, true, nil
}

// unquote is urllib.parse.unquote: %XX sequences are decoded as UTF-8
// (invalid sequences become U+FFFD); malformed escapes stay as they are.
func unquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// parseQSL is urllib.parse.parse_qsl(qs, keep_blank_values=True) (separator
// "&", "+" means space), returned in order.
func parseQSL(qs string) [][2]string {
	var out [][2]string
	for _, nv := range strings.Split(qs, "&") {
		if nv == "" {
			continue
		}
		name, value, _ := strings.Cut(nv, "=")
		out = append(out, [2]string{
			unquote(strings.ReplaceAll(name, "+", " ")),
			unquote(strings.ReplaceAll(value, "+", " ")),
		})
	}
	return out
}
