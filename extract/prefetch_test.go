package extract

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// fakeRows yields n rows of (int, text, bytes). Like an engine, it keeps
// each row's text in one buffer that the next row overwrites, so a reader
// that does not copy the text sees it change. err, when set, comes after
// the n rows.
type fakeRows struct {
	n, i   int
	width  func(i int) int // length of row i's text
	buf    []byte
	err    error
	closed bool
}

func (f *fakeRows) text(i int) string {
	return strings.Repeat(string(rune('a'+i%26)), f.width(i))
}

func (f *fakeRows) next(dst []value) (bool, error) {
	if f.i == f.n {
		return false, f.err
	}
	f.buf = append(f.buf[:0], f.text(f.i)...)
	dst[0] = value{kind: vInt, i: int64(f.i)}
	dst[1] = value{kind: vText, b: f.buf}
	dst[2] = value{kind: vBinary, b: f.buf[:min(3, len(f.buf))]}
	f.i++
	return true, nil
}

func (f *fakeRows) close() error { f.closed = true; return nil }

// TestPrefetchKeepsRowsOrderAndText: rows come out in order with their own
// text across blocks ended by row count and by bytes, then the end or the
// engine's error, and the reading goroutine ends with close.
func TestPrefetchKeepsRowsOrderAndText(t *testing.T) {
	defer goleak.VerifyNone(t)
	boom := errors.New("network gone")
	for _, tc := range []struct {
		name  string
		n     int
		width func(int) int
		err   error
	}{
		{"no rows", 0, func(int) int { return 1 }, nil},
		{"blocks by rows", 3*prefetchRows + 7, func(i int) int { return 1 + i%5 }, nil},
		{"blocks by bytes", 40, func(i int) int { return 100_000 + i }, nil},
		{"empty text", 5, func(int) int { return 0 }, nil},
		{"error after rows", prefetchRows + 3, func(int) int { return 10 }, boom},
		{"error first", 0, func(int) int { return 1 }, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeRows{n: tc.n, width: tc.width, err: tc.err}
			p := prefetch(src, 3)
			dst := make([]value, 3)
			got := 0
			for {
				ok, err := p.next(dst)
				if !ok {
					if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
						t.Errorf("end: %v, want %v", err, tc.err)
					}
					break
				}
				want := src.text(got)
				if dst[0].i != int64(got) || string(dst[1].b) != want || string(dst[2].b) != want[:min(3, len(want))] {
					t.Fatalf("row %d: got (%d, %.10q, %q)", got, dst[0].i, dst[1].b, dst[2].b)
				}
				got++
			}
			if ok, err := p.next(dst); ok || !errors.Is(err, tc.err) {
				t.Errorf("next after the end: %v %v", ok, err)
			}
			if got != tc.n {
				t.Errorf("%d rows, want %d", got, tc.n)
			}
			if err := p.close(); err != nil || !src.closed {
				t.Errorf("close: %v, source closed %v", err, src.closed)
			}
		})
	}
}

// TestPrefetchStopsEarly: closing before the end (an extraction that
// failed, or found every key it wanted) stops the reading goroutine after
// at most the blocks it may read ahead.
func TestPrefetchStopsEarly(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := &fakeRows{n: 1_000_000, width: func(int) int { return 4 }}
	p := prefetch(src, 3)
	dst := make([]value, 3)
	for i := range 10 {
		if ok, err := p.next(dst); !ok || err != nil || dst[0].i != int64(i) {
			t.Fatalf("row %d: %v %v %d", i, ok, err, dst[0].i)
		}
	}
	if err := p.close(); err != nil || !src.closed {
		t.Fatalf("close: %v, source closed %v", err, src.closed)
	}
	if src.i > (prefetchBlocks+1)*prefetchRows {
		t.Errorf("read %d rows of the source for 10 used: more than the blocks ahead", src.i)
	}
}
