package sfemu

import (
	"crypto/rand"
	"strings"
	"time"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// idPod is the 2-character instance part that follows the key prefix in
// every ID this emulator issues ("0015g00000..."), as on a real pod.
const idPod = "5g"

// Fixed identities of the emulated org and its run-as user (the user the
// client-credentials flow issues tokens for, salesforce-api.md 1.1).
var (
	orgID  = makeID("00D", 0x4ABCD)
	userID = makeID("005", 0x12345)
)

// makeID builds the 18-character ID of the seq-th record with the given key
// prefix: prefix, pod, a 10-character base-62 counter and the case-safe
// suffix of salesforce-api.md §0.
func makeID(prefix string, seq uint64) string {
	var b [18]byte
	appendID(b[:0], prefix, seq)
	return string(b[:])
}

// appendID appends the 18-character ID to dst without allocating.
func appendID(dst []byte, prefix string, seq uint64) []byte {
	start := len(dst)
	dst = append(dst, prefix...)
	dst = append(dst, idPod...)
	var num [10]byte
	for i := 9; i >= 0; i-- {
		num[i] = base62[seq%62]
		seq /= 62
	}
	dst = append(dst, num[:]...)
	return appendIDSuffix(dst, dst[start:start+15])
}

// appendIDSuffix appends the 3-character case-safe suffix of a 15-character
// ID: each 5-character chunk gives a 5-bit number whose bit i is set when
// character i is an upper-case letter; 0-25 map to A-Z and 26-31 to 0-5
// (salesforce-api.md §0, [D/O]).
func appendIDSuffix(dst []byte, id15 []byte) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	for chunk := 0; chunk < 3; chunk++ {
		n := 0
		for i := 0; i < 5; i++ {
			c := id15[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		dst = append(dst, alphabet[n])
	}
	return dst
}

// parseID checks a 15- or 18-character record ID and returns its key
// prefix and sequence number. An 18-character ID whose case was changed is
// restored with its suffix, as Salesforce accepts case-insensitive 18-char IDs.
func parseID(s string) (prefix string, seq uint64, ok bool) {
	switch len(s) {
	case 15:
	case 18:
		var fixed [18]byte
		copy(fixed[:], s)
		// Restore the case of the letters from the suffix bits.
		for chunk := 0; chunk < 3; chunk++ {
			c := s[15+chunk]
			var n int
			switch {
			case c >= 'A' && c <= 'Z':
				n = int(c - 'A')
			case c >= 'a' && c <= 'z':
				n = int(c - 'a')
			case c >= '0' && c <= '5':
				n = 26 + int(c-'0')
			default:
				return "", 0, false
			}
			for i := 0; i < 5; i++ {
				p := chunk*5 + i
				ch := fixed[p]
				if n&(1<<i) != 0 {
					if ch >= 'a' && ch <= 'z' {
						fixed[p] = ch - 'a' + 'A'
					}
				} else if ch >= 'A' && ch <= 'Z' {
					fixed[p] = ch - 'A' + 'a'
				}
			}
		}
		var chk [3]byte
		appendIDSuffix(chk[:0], fixed[:15])
		if !strings.EqualFold(string(chk[:]), s[15:]) {
			return "", 0, false
		}
		s = string(fixed[:15])
	default:
		return "", 0, false
	}
	if s[3:5] != idPod {
		// Well-formed IDs from another pod cannot exist in this org.
		if !isAlnum(s) {
			return "", 0, false
		}
		return s[:3], 0, true
	}
	var n uint64
	for i := 5; i < 15; i++ {
		d := strings.IndexByte(base62, s[i])
		if d < 0 {
			return "", 0, false
		}
		n = n*62 + uint64(d)
	}
	return s[:3], n, true
}

// id15 returns the case-sensitive 15-character form of an 18-character ID.
func id15(id string) string {
	if len(id) == 18 {
		return id[:15]
	}
	return id
}

// newJobIDBase picks where this emulator's job IDs start. Job IDs keep
// Salesforce's shape (prefix 750, pod, 10 base-62 digits, case-safe
// suffix), but their counter starts at the wall-clock time in
// milliseconds times 65,536 plus 16 random bits, not at 1: an emulator
// restarted later starts above every ID the previous one issued unless
// that one created more than 65,536 jobs per millisecond it ran, and two
// emulators started in the same millisecond differ in the random bits.
// A client that remembers job IDs across an emulator restart (a resumed
// run) thus never mistakes a new job for an old one. The real clock is
// used even with WithClock, so tests with a fixed clock still get
// distinct IDs across instances. 62^10 holds these counters until the
// year 2375.
func newJobIDBase(now time.Time) uint64 {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return uint64(now.UnixMilli())<<16 | uint64(b[0])<<8 | uint64(b[1])
}
