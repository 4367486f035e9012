package extract

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rtRow is one generated row of every column type.
type rtRow struct {
	id    int64
	txt   string
	dec   string // decimal literal, up to 18 digits with 4 decimals
	flt   float64
	ok    bool
	day   time.Time // date
	ts    time.Time // wall clock, read in the source zone
	tstz  time.Time // instant
	empty bool      // txt is NULL
}

// genText makes text full of CSV trouble: delimiters, quotes, CR, LF,
// multi-byte characters.
func genText(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", " ", ",", `"`, "\n", "\r\n", "\r", "é", "日", "🚀", ";", "\t", "'", "#", "N/A", "\ufeff", "\u2028", "\x7f"}
	n := r.IntN(40)
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	if b.Len() == 0 || strings.EqualFold(b.String(), "#N/A") { // #N/A is refused (Salesforce's null marker)
		return "x"
	}
	return b.String()
}

func genRows(r *rand.Rand, n int) []rtRow {
	rows := make([]rtRow, n)
	for i := range rows {
		dec := fmt.Sprintf("%d.%04d", r.Int64N(1e14)-5e13, r.IntN(10000))
		if strings.HasPrefix(dec, "-") {
			dec = "-" + strings.TrimPrefix(dec, "-")
		}
		var flt float64
		switch r.IntN(4) {
		case 0:
			flt = r.NormFloat64() * 1e-9
		case 1:
			flt = r.NormFloat64() * 1e15
		default:
			flt = float64(r.IntN(1000)) / 8
		}
		base := time.Date(1970+r.IntN(120), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6)*1000, time.UTC)
		rows[i] = rtRow{
			id:    int64(i*7 + 3), // ascending, gaps
			txt:   genText(r),
			dec:   dec,
			flt:   flt,
			ok:    r.IntN(2) == 1,
			day:   time.Date(1900+r.IntN(200), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC),
			ts:    base,
			tstz:  base.Add(time.Duration(r.Int64N(1e15))).In(time.FixedZone("", (r.IntN(28)-12)*1800)),
			empty: r.IntN(10) == 0,
		}
	}
	return rows
}

// TestRoundTrip: arbitrary rows of every column type -> batch CSV files ->
// parsed back with encoding/csv -> the same values, on every engine there is.
func TestRoundTrip(t *testing.T) {
	engines := map[string]func(*testing.T) *engineHarness{"sqlite": sqliteHarness, "postgres": pgHarness, "oracle": oracleHarness}
	for _, name := range []string{"sqlite", "postgres", "oracle"} {
		t.Run(name, func(t *testing.T) {
			roundTrip(t, engines[name](t))
		})
	}
}

func roundTrip(t *testing.T, h *engineHarness) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	rows := genRows(r, 600)
	name := h.table(t)
	lit := func(s string) string { return sqlStr(s) }
	var data [][]string
	for _, row := range rows {
		txt := lit(row.txt)
		if row.empty {
			txt = "NULL"
		}
		data = append(data, []string{
			strconv.FormatInt(row.id, 10), txt, lit(row.dec), strconv.FormatFloat(row.flt, 'g', -1, 64), h.boolLit(row.ok),
			lit(row.day.Format("2006-01-02")), lit(row.ts.Format("2006-01-02 15:04:05.000000")),
			lit(row.tstz.Format("2006-01-02 15:04:05.000000 -07:00")),
		})
	}
	h.createTable(t, name, [][2]string{{"id", "int"}, {"txt", "text"}, {"dec", "decimal"}, {"flt", "float"}, {"ok", "bool"},
		{"day", "date"}, {"ts", "timestamp"}, {"tstz", "timestamptz"}}, data)

	src := h.open(t)
	zone, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		zone = time.FixedZone("-03", -3*3600)
	}
	for _, loc := range []*time.Location{time.UTC, zone} {
		t.Run(loc.String(), func(t *testing.T) {
			res, err := src.Extract(t.Context(), Table{Name: "RT", From: name, OrderBy: []string{"id"}, NullAs: NullClear, SourceTimeZone: loc,
				Fields: []Field{{Column: "id", Name: "Id"}, {Column: "txt", Name: "Txt"}, {Column: "dec", Name: "Dec", Type: "currency"},
					{Column: "flt", Name: "Flt"}, {Column: "ok", Name: "Ok", Type: "boolean"}, {Column: "day", Name: "Day", Type: "date"},
					{Column: "ts", Name: "Ts", Type: "datetime"}, {Column: "tstz", Name: "TsTZ", Type: "datetime"}}},
				Options{Dir: t.TempDir(), BatchSize: 97, MaxBytes: 9000})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != int64(len(rows)) {
				t.Fatalf("%d rows, want %d", res.Rows, len(rows))
			}
			var got [][]string
			for _, b := range res.Batches {
				if b.Bytes > 9000 || b.Rows > 97 {
					t.Errorf("batch %d: %d rows, %d bytes", b.Index, b.Rows, b.Bytes)
				}
				got = append(got, readCSV(t, b.Path)[1:]...)
			}
			for i, row := range rows {
				checkRoundTrip(t, row, got[i], loc)
			}
		})
	}
}

func checkRoundTrip(t *testing.T, row rtRow, rec []string, loc *time.Location) {
	t.Helper()
	fail := func(col, got string, want any) {
		t.Helper()
		t.Errorf("row id=%d column %s: got %q, want %v", row.id, col, got, want)
	}
	if len(rec) != 8 {
		t.Fatalf("row id=%d has %d fields", row.id, len(rec))
	}
	if id, err := strconv.ParseInt(rec[0], 10, 64); err != nil || id != row.id {
		fail("id", rec[0], row.id)
	}
	wantTxt := strings.ReplaceAll(strings.ReplaceAll(row.txt, "\r\n", "\n"), "\r", "\n")
	if row.empty {
		wantTxt = "#N/A"
	}
	if rec[1] != wantTxt {
		fail("txt", rec[1], strconv.Quote(wantTxt))
	}
	d1, ok1 := new(big.Rat).SetString(rec[2])
	d2, _ := new(big.Rat).SetString(row.dec)
	if !ok1 || d1.Cmp(d2) != 0 || strings.ContainsAny(rec[2], "eE") {
		fail("dec", rec[2], row.dec)
	}
	if f, err := strconv.ParseFloat(rec[3], 64); err != nil || f != row.flt || strings.ContainsAny(rec[3], "eE") {
		fail("flt", rec[3], row.flt)
	}
	if rec[4] != strconv.FormatBool(row.ok) {
		fail("ok", rec[4], row.ok)
	}
	if rec[5] != row.day.Format("2006-01-02") {
		fail("day", rec[5], row.day.Format("2006-01-02"))
	}
	const layout = "2006-01-02T15:04:05.000Z"
	// A wall clock that a daylight-saving change skips or repeats has no
	// single reading (TestPostgresLocalTimes checks the rule used); others
	// must come back as exactly one instant.
	wantTs := time.Date(row.ts.Year(), row.ts.Month(), row.ts.Day(), row.ts.Hour(), row.ts.Minute(), row.ts.Second(), row.ts.Nanosecond(), loc)
	if !dstAmbiguous(wantTs, row.ts) && rec[6] != wantTs.UTC().Format(layout) {
		fail("ts", rec[6], wantTs.UTC().Format(layout))
	}
	if want := row.tstz.UTC().Truncate(time.Millisecond).Format(layout); rec[7] != want {
		fail("tstz", rec[7], want)
	}
}

// dstAmbiguous reports whether the wall clock w (UTC-labelled), read in
// t's zone as t, falls in a daylight-saving gap or overlap there.
func dstAmbiguous(t, w time.Time) bool {
	if !sameWall(t, w) {
		return true // the gap: time.Date moved it
	}
	for _, d := range []time.Duration{-time.Hour, -30 * time.Minute, 30 * time.Minute, time.Hour} {
		if sameWall(t.Add(d), w) {
			return true // the overlap: another instant shows the same clock
		}
	}
	return false
}
