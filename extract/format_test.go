package extract

import (
	"bytes"
	"encoding/csv"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendText(t *testing.T) {
	cases := []struct {
		in, want string
		max      int
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "", want: ""},
		{in: "a,b", want: `"a,b"`},
		{in: `say "hi"`, want: `"say ""hi"""`},
		{in: `"`, want: `""""`},
		{in: `""x",`, want: `"""""x"","`},
		{in: "two\nlines", want: "\"two\nlines\""},
		{in: "crlf\r\nend", want: "\"crlf\nend\""},
		{in: "cr\rend", want: "\"cr\nend\""},
		{in: "\r\n\r\r\n", want: "\"\n\n\n\""},
		{in: " spaced ", want: " spaced "}, // values are not trimmed, and need no quotes (salesforce-api.md §4.1)
		{in: "tab\there", want: "tab\there"},
		{in: "ünïcødé 🚀", want: "ünïcødé 🚀"},
		{in: "#N/A", err: "would clear the Salesforce field"}, // Salesforce reads it as null
		{in: "#n/a", err: "would clear the Salesforce field"},
		{in: " #N/A", want: " #N/A"},              // not the null marker: kept as is
		{in: "#N/A,", want: `"#N/A,"`},            // quoted, not the marker either
		{in: "a\x00b", err: "NUL byte at byte 1"}, // SQLite text can hold NUL; Salesforce text cannot
		{in: "12345678\x00", err: "NUL byte at byte 8"},
		{in: "\ufeffBOM first", want: "\ufeffBOM first"}, // a BOM inside a value is just a character
		{in: "line\u2028sep\u2029para", want: "line\u2028sep\u2029para"},
		{in: "\x01\x1f\x7f", want: "\x01\x1f\x7f"}, // other control characters pass
		{in: "\xff", err: "invalid UTF-8 at byte 0"},
		{in: "ok\xc3", err: "invalid UTF-8 at byte 2"},
		{in: "ééé", max: 3, want: "ééé"}, // characters, not bytes
		{in: "éééé", max: 3, err: "4 characters, more than the field limit of 3"},
		{in: "ab\r\ncd", max: 5, want: "\"ab\ncd\""}, // counted after CR LF -> LF
	}
	for _, c := range cases {
		got, err := appendText([]byte("x,"), []byte(c.in), c.max)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("appendText(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != "x,"+c.want {
			t.Errorf("appendText(%q) = %q, %v; want %q", c.in, got, err, "x,"+c.want)
		}
	}
}

func TestAppendDecimal(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{in: "0", want: "0"},
		{in: "123.4500", want: "123.4500"}, // scale kept: exact text
		{in: "-0.0001", want: "-0.0001"},
		{in: "+5", want: "5"},
		{in: ".5", want: "0.5"},
		{in: "-.5", want: "-0.5"},
		{in: "5.", want: "5"},
		{in: "-0", want: "0"},
		{in: "-0.000", want: "0.000"},
		{in: "1e+20", want: "100000000000000000000"},
		{in: "1E20", want: "100000000000000000000"},
		{in: "1.5e-3", want: "0.0015"},
		{in: "-1.23e2", want: "-123"},
		{in: "1.2345e2", want: "123.45"},
		{in: "0.00012e4", want: "1.2"},
		{in: "0e10", want: "0"},
		{in: "123456789012345678901234567890.123456789", want: "123456789012345678901234567890.123456789"},
		{in: "NaN", err: "NaN is not a number"},
		{in: "-Infinity", err: "is not a number"},
		{in: "", err: "not a decimal"},
		{in: "1.2.3", err: "not a decimal"},
		{in: "12abc", err: "not a decimal"},
		{in: "1e", err: "not a decimal"},
		{in: " 1", err: "not a decimal"},
		{in: "1,5", err: "not a decimal"},
	}
	for _, c := range cases {
		got, err := appendDecimal(nil, []byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("appendDecimal(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("appendDecimal(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestAppendTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	cases := []struct {
		in       string
		src      srcKind
		dateOnly bool
		loc      *time.Location
		want     string
		err      string
	}{
		{in: "2024-01-02", src: srcDate, dateOnly: true, want: "2024-01-02"},
		{in: "2024-01-02", src: srcDate, dateOnly: true, loc: berlin, want: "2024-01-02"}, // dates never shift
		{in: "2024-01-02", src: srcDate, loc: berlin, want: "2024-01-01T23:00:00.000Z"},   // date into a datetime field: midnight there
		{in: "2024-01-02 03:04:05", src: srcTimestamp, want: "2024-01-02T03:04:05.000Z"},
		{in: "2024-01-02T03:04", src: srcTimestamp, want: "2024-01-02T03:04:00.000Z"},
		{in: "2024-01-02 03:04:05.9999999999", src: srcTimestamp, want: "2024-01-02T03:04:05.999Z"}, // truncated
		{in: "2024-07-01 12:00:00", src: srcTimestamp, loc: berlin, want: "2024-07-01T10:00:00.000Z"},
		{in: "2024-03-31 02:30:00", src: srcTimestamp, loc: berlin, want: "2024-03-31T01:30:00.000Z"},  // in the DST gap: the offset before the change
		{in: "2024-10-27 02:30:00", src: srcTimestamp, loc: berlin, want: "2024-10-27T01:30:00.000Z"},  // in the overlap: standard time (CET)
		{in: "2024-03-10 02:30:00", src: srcTimestamp, loc: newYork, want: "2024-03-10T07:30:00.000Z"}, // as PostgreSQL reads it; time.Date says 06:30Z
		{in: "2024-11-03 01:30:00", src: srcTimestamp, loc: newYork, want: "2024-11-03T06:30:00.000Z"}, // time.Date says 05:30Z
		{in: "2024-11-03 00:59:59", src: srcTimestamp, loc: newYork, want: "2024-11-03T04:59:59.000Z"}, // just before the overlap
		{in: "2024-11-03 02:00:00", src: srcTimestamp, loc: newYork, want: "2024-11-03T07:00:00.000Z"}, // just after it
		{in: "2024-03-10 03:00:00", src: srcTimestamp, loc: newYork, want: "2024-03-10T07:00:00.000Z"}, // just after the gap
		{in: "2024-07-01 12:00:00+00", src: srcTimestampTZ, loc: berlin, want: "2024-07-01T12:00:00.000Z"},
		{in: "2024-07-01 12:00:00+05:30", src: srcTimestampTZ, want: "2024-07-01T06:30:00.000Z"},
		{in: "2024-07-01 12:00:00-0330", src: srcTimestampTZ, want: "2024-07-01T15:30:00.000Z"},
		{in: "1900-01-01 00:00:00+00:53:28", src: srcTimestampTZ, want: "1899-12-31T23:06:32.000Z"},    // historical LMT offset
		{in: "2024-07-01T12:00:00Z", src: srcTimestamp, loc: berlin, want: "2024-07-01T12:00:00.000Z"}, // a zone in the text wins
		{in: "2024-07-01 00:30:00+02", src: srcTimestampTZ, dateOnly: true, loc: berlin, want: "2024-07-01"},
		{in: "2024-07-01 00:30:00+02", src: srcTimestampTZ, dateOnly: true, want: "2024-06-30"},
		{in: "2024-01-01 00:00:00", src: srcTimestamp, dateOnly: true, loc: berlin, want: "2024-01-01"},
		{in: "2024-02-30", src: srcDate, dateOnly: true, err: "not a date/time"},
		{in: "2023-02-29", src: srcDate, dateOnly: true, err: "not a date/time"},
		{in: "2024-01-02 24:00:00", src: srcTimestamp, err: "not a date/time"},
		{in: "2024-1-2", src: srcDate, err: "not a date/time"},
		{in: "02/01/2024", src: srcDate, err: "not a date/time"},
		{in: "2024-01-02 03:04:05 junk", src: srcTimestamp, err: "not a date/time"},
		{in: "infinity", src: srcTimestamp, err: "infinite"},
		{in: "0000-01-01 00:00:00+01", src: srcTimestampTZ, err: "year -1 is outside"},
		{in: "12345-01-01", src: srcDate, dateOnly: true, err: "outside 0000-9999"},
	}
	for _, c := range cases {
		col := &column{name: "c", src: c.src}
		v := &value{kind: vText, b: []byte(c.in)}
		got, err := newFormatter(c.loc).appendTime(nil, v, col, c.dateOnly)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("appendTime(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("appendTime(%q, %v, dateOnly=%v) = %q, %v; want %q", c.in, c.loc, c.dateOnly, got, err, c.want)
		}
	}
}

func TestAppendBool(t *testing.T) {
	col := &column{name: "b", out: outBool}
	for in, want := range map[string]string{"t": "true", "f": "false", "TRUE": "true", "No": "false", "y": "true", "1": "true", "0": "false"} {
		got, err := appendBool(nil, &value{kind: vText, b: []byte(in)}, col)
		if err != nil || string(got) != want {
			t.Errorf("appendBool(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, v := range []value{{kind: vText, b: []byte("maybe")}, {kind: vInt, i: 2}, {kind: vFloat, f: 0.5}} {
		if _, err := appendBool(nil, &v, col); err == nil {
			t.Errorf("appendBool(%+v) accepted", v)
		}
	}
}

// FuzzAppendText: any text either fails (invalid UTF-8) or survives a round
// trip through a CSV reader, with CR LF / CR turned into LF.
func FuzzAppendText(f *testing.F) {
	for _, s := range []string{"", "a,b", `"`, "x\r\ny", "\r", "日本", "a\"\"b\n", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line, err := appendText([]byte("k,"), []byte(s), 0)
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 || strings.EqualFold(s, "#N/A") {
			if err == nil {
				t.Fatalf("%q accepted", s)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		line = append(line, '\n')
		if bytes.IndexByte(line, '\r') >= 0 {
			t.Fatalf("CR in output %q", line)
		}
		recs, err := csv.NewReader(bytes.NewReader(line)).ReadAll()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
		if len(recs) != 1 || len(recs[0]) != 2 || recs[0][1] != want {
			t.Fatalf("%q -> %q -> %q", s, line, recs)
		}
	})
}

// FuzzAppendDecimal: accepted decimal text keeps its exact value and never
// has an exponent.
func FuzzAppendDecimal(f *testing.F) {
	for _, s := range []string{"1", "-0.5", "1e5", "1.25E-7", ".5", "5.", "NaN", "1e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := appendDecimal(nil, []byte(s))
		if err != nil {
			return
		}
		if bytes.ContainsAny(out, "eE+") {
			t.Fatalf("%q -> %q has an exponent or sign", s, out)
		}
		in, ok1 := new(big.Rat).SetString(s)
		got, ok2 := new(big.Rat).SetString(string(out))
		if !ok1 || !ok2 || in.Cmp(got) != 0 {
			t.Fatalf("%q -> %q changes the value (%v %v)", s, out, ok1, ok2)
		}
	})
}

// FuzzParseCivil: whatever parses is a valid calendar time that formats back
// to the same fields.
func FuzzParseCivil(f *testing.F) {
	for _, s := range []string{"2024-01-02", "2024-01-02 03:04:05.123456+05:30", "2024-02-29T00:00Z", "9999-12-31 23:59:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCivil([]byte(s))
		if err != nil {
			return
		}
		tm := time.Date(c.year, time.Month(c.month), c.day, c.hour, c.min, c.sec, c.nsec, time.UTC)
		if tm.Year() != c.year || int(tm.Month()) != c.month || tm.Day() != c.day || tm.Hour() != c.hour || tm.Minute() != c.min || tm.Second() != c.sec {
			t.Fatalf("%q parsed to an impossible time %+v", s, c)
		}
	})
}

func TestScanText(t *testing.T) {
	// Every position of every special byte in strings long enough for the
	// 8-byte fast path.
	for n := 0; n < 20; n++ {
		for pos := 0; pos < n; pos++ {
			for _, c := range []byte{',', '"', '\n', '\r', 0x80, 0xc3, 0xff, 0} {
				b := []byte(strings.Repeat("a", n))
				b[pos] = c
				if got, want := scanText(b), csvClass[c]; got != want {
					t.Errorf("scanText(%q) = %d, want %d", b, got, want)
				}
			}
		}
		if got := scanText([]byte(strings.Repeat("+", n))); got != 0 {
			t.Errorf("scanText of plain text = %d", got)
		}
	}
}

func BenchmarkAppendText(b *testing.B) {
	for name, v := range map[string]string{
		"plain":  "Description of product 123456 with some longer text to make the row realistic",
		"comma":  "Valve for food-grade applications, item 289, with some longer text to make the row realistic",
		"quotes": "Valve 3/4\" for food-grade applications, item 289, with \"longer\" text\nto make the row realistic",
		"CR LF":  "Valve 3/4\" for food-grade applications, item 289, with \"longer\" text\r\nto make the row realistic",
	} {
		b.Run(name, func(b *testing.B) {
			dst, vb := make([]byte, 0, 256), []byte(v)
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				dst, _ = appendText(dst[:0], vb, maxFieldChars)
			}
		})
	}
}
