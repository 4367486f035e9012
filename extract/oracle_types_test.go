package extract

import (
	"database/sql/driver"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	go_ora "github.com/sijms/go-ora/v2"
	"github.com/sijms/go-ora/v2/converters"
)

// The Oracle type audit without a server: each value starts as the bytes
// Oracle sends on the wire (the form SELECT DUMP(col) shows), is decoded by
// the go-ora function its row reader calls for that type
// (ParameterInfo.decodePrimValue in parameter.go, v2.8.24), and then goes
// through oracleValue and the formatter like a fetched value. This checks
// what go-ora really hands over, not what we assume it does.

// goraNumberWire decodes NUMBER wire bytes the way go-ora's row reader does
// (Number{data}.String()). go_ora.Number keeps its bytes in an unexported
// field, so the test sets it through its only field.
func goraNumberWire(t *testing.T, wire ...byte) string {
	t.Helper()
	typ := reflect.TypeFor[go_ora.Number]()
	if typ.NumField() != 1 || typ.Field(0).Type != reflect.TypeFor[[]byte]() {
		t.Fatal("go_ora.Number is no longer struct{ data []byte }: update goraNumberWire")
	}
	var n go_ora.Number
	*(*[]byte)(unsafe.Pointer(&n)) = wire
	s, err := n.String()
	if err != nil {
		t.Fatalf("go-ora cannot decode NUMBER % x: %v", wire, err)
	}
	return s
}

// goraDateWire decodes DATE / TIMESTAMP / TIMESTAMP WITH TIME ZONE wire
// bytes as go-ora does (converters.DecodeDate).
func goraDateWire(t *testing.T, wire ...byte) time.Time {
	t.Helper()
	tm, err := converters.DecodeDate(wire)
	if err != nil {
		t.Fatalf("go-ora cannot decode % x: %v", wire, err)
	}
	return tm
}

// oracleFloatWire is the wire form of an IEEE float (Oracle's
// BINARY_FLOAT/BINARY_DOUBLE): big-endian, sign bit flipped for positive
// values, every bit inverted for negative ones.
func oracleFloatWire(bits uint64, size int) []byte {
	sign := uint64(1) << (size*8 - 1)
	if bits&sign == 0 {
		bits |= sign
	} else {
		bits = ^bits
	}
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, bits)
	return b[8-size:]
}

// TestOracleTypeMapping is the Oracle column of the type table in doc.go.
func TestOracleTypeMapping(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	nines := strings.Repeat("9", 38)
	cases := []oracleCase{
		// NUMBER: exact decimal text, no exponent, no trailing zeros
		// (Oracle keeps no scale: NUMBER(10,2) 12.50 is stored as 12.5).
		{"NUMBER 0", "NUMBER", goraNumberWire(t, 0x80), "", nil, "0", ""},
		{"NUMBER 1", "NUMBER", goraNumberWire(t, 0xC1, 0x02), "", nil, "1", ""},
		{"NUMBER 100", "NUMBER", goraNumberWire(t, 0xC2, 0x02), "", nil, "100", ""},
		{"NUMBER 123.456", "NUMBER", goraNumberWire(t, 0xC2, 0x02, 0x18, 0x2E, 0x3D), "", nil, "123.456", ""},
		{"NUMBER -1", "NUMBER", goraNumberWire(t, 0x3E, 0x64, 0x66), "", nil, "-1", ""},
		{"NUMBER -123.456", "NUMBER", goraNumberWire(t, 0x3D, 0x64, 0x4E, 0x38, 0x29, 0x66), "", nil, "-123.456", ""},
		{"NUMBER 0.05", "NUMBER", goraNumberWire(t, 0xC0, 0x06), "", nil, "0.05", ""},
		{"NUMBER(10,2) 12.50", "NUMBER", goraNumberWire(t, 0xC1, 0x0D, 0x33), "", nil, "12.5", ""},
		{"NUMBER(5,-2) 12300", "NUMBER", goraNumberWire(t, 0xC3, 0x02, 0x18), "", nil, "12300", ""},
		{"NUMBER 1e125", "NUMBER", goraNumberWire(t, 0xFF, 0x0B), "", nil, "1" + strings.Repeat("0", 125), ""},
		{"NUMBER largest", "NUMBER", goraNumberWire(t, append([]byte{0xFF}, []byte(strings.Repeat("\x64", 19))...)...), "", nil,
			nines + strings.Repeat("0", 88), ""},
		{"NUMBER 1e-128", "NUMBER", goraNumberWire(t, 0x81, 0x02), "", nil, "0." + strings.Repeat("0", 127) + "1", ""},
		// go-ora reads any NUMBER whose exponent byte is 0x80 as zero, so the
		// range 1e-130 <= x < 1e-128 arrives as 0 (a driver limit; doc.go).
		{"NUMBER 1e-130 (go-ora limit)", "NUMBER", goraNumberWire(t, 0x80, 0x02), "", nil, "0", ""},
		{"NUMBER +infinity", "NUMBER", goraNumberWire(t, 0xFF, 0x65), "", nil, "", "Infinity is not a number"},
		{"NUMBER -infinity", "NUMBER", goraNumberWire(t, 0x00), "", nil, "", "-Infinity is not a number"},
		{"NUMBER 1 as boolean", "NUMBER", goraNumberWire(t, 0xC1, 0x02), "boolean", nil, "true", ""},
		{"NUMBER 0 as boolean", "NUMBER", goraNumberWire(t, 0x80), "boolean", nil, "false", ""},

		// DATE: wall clock, no zone; read in the source time zone.
		{"DATE", "DATE", goraDateWire(t, 120, 124, 2, 29, 14, 15, 16), "", nil, "2024-02-29T13:14:15.000Z", ""},
		{"DATE into a date field", "DATE", goraDateWire(t, 120, 124, 2, 29, 24, 60, 60), "date", berlin, "2024-02-29", ""},
		{"DATE in Berlin", "DATE", goraDateWire(t, 120, 124, 7, 1, 1, 31, 1), "", berlin, "2024-06-30T22:30:00.000Z", ""},
		{"DATE 9999-12-31", "DATE", goraDateWire(t, 199, 199, 12, 31, 24, 60, 60), "", nil, "9999-12-31T23:59:59.000Z", ""},
		{"DATE 4712 BC", "DATE", goraDateWire(t, 53, 88, 1, 1, 1, 1, 1), "date", nil, "", "year -4712 is outside 0000-9999"},

		// TIMESTAMP: nanoseconds on the wire, truncated to milliseconds.
		{"TIMESTAMP", "TimeStampDTY", goraDateWire(t, 120, 124, 1, 2, 4, 5, 6, 0x07, 0x5B, 0xCD, 0x15), "", nil, "2024-01-02T03:04:05.123Z", ""},
		{"TIMESTAMP(0)", "TimeStampDTY", goraDateWire(t, 120, 124, 1, 2, 4, 5, 6), "", nil, "2024-01-02T03:04:05.000Z", ""},

		// TIMESTAMP WITH TIME ZONE: the wire holds UTC plus an offset or a
		// region; the instant is what counts.
		{"TSTZ +05:30", "TimeStampTZ_DTY", goraDateWire(t, 120, 124, 7, 1, 7, 31, 1, 0, 0, 0, 0, 25, 90), "", nil, "2024-07-01T06:30:00.000Z", ""},
		{"TSTZ -03:30", "TimeStampTZ_DTY", goraDateWire(t, 120, 124, 7, 1, 16, 31, 1, 0, 0, 0, 0, 17, 30), "", nil, "2024-07-01T15:30:00.000Z", ""},
		{"TSTZ Europe/Berlin", "TimeStampTZ_DTY", goraDateWire(t, 120, 124, 7, 1, 11, 1, 1, 0, 0, 0, 0, 0x85, 0xFC), "", nil, "2024-07-01T10:00:00.000Z", ""},
		{"TSTZ Europe/Berlin into a date field", "TimeStampTZ_DTY", goraDateWire(t, 120, 124, 6, 30, 23, 1, 1, 0, 0, 0, 0, 0x85, 0xFC), "date", berlin, "2024-07-01", ""},
		{"TSTZ unknown region", "TimeStampTZ_DTY", goraDateWire(t, 120, 124, 7, 1, 11, 1, 1, 0, 0, 0, 0, 0xFF, 0xFC), "", nil, "2024-07-01T10:00:00.000Z", ""},

		// BINARY_DOUBLE is exact; BINARY_FLOAT is selected as BINARY_DOUBLE
		// (dialect.selectCol) and written as the float32's shortest decimal.
		{"BINARY_DOUBLE 0.1", "IBDouble", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(0.1), 8)), "", nil, "0.1", ""},
		{"BINARY_DOUBLE 1e20", "IBDouble", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(1e20), 8)), "", nil, "100000000000000000000", ""},
		{"BINARY_DOUBLE -0", "IBDouble", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(math.Copysign(0, -1)), 8)), "", nil, "0", ""},
		{"BINARY_DOUBLE -1e-7", "IBDouble", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(-1e-7), 8)), "", nil, "-0.0000001", ""},
		{"BINARY_DOUBLE NaN", "IBDouble", converters.ConvertBinaryDouble(oracleFloatWire(0x7FF8000000000000, 8)), "", nil, "", "NaN is not a number"},
		{"BINARY_DOUBLE +Inf", "IBDouble", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(math.Inf(1)), 8)), "", nil, "", "is not a number"},
		{"BINARY_FLOAT 0.7", "IBFloat", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(float64(float32(0.7))), 8)), "", nil, "0.7", ""},
		{"BINARY_FLOAT 1.5e-7", "IBFloat", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(float64(float32(1.5e-7))), 8)), "", nil, "0.00000015", ""},
		{"BINARY_FLOAT -Inf", "IBFloat", converters.ConvertBinaryDouble(oracleFloatWire(math.Float64bits(math.Inf(-1)), 8)), "", nil, "", "is not a number"},

		// Character types: text as stored. CHAR/NCHAR keep their blank
		// padding (Salesforce does not trim: RTRIM in the query if unwanted).
		{"CHAR(5) padding", "CHAR", "ab   ", "", nil, "ab   ", ""},
		{"NVARCHAR2", "NCHAR", "Ключ 🔧", "", nil, "Ключ 🔧", ""},
		{"CLOB at the field limit", "OCIClobLocator", strings.Repeat("é", maxFieldChars), "", nil, strings.Repeat("é", maxFieldChars), ""},
		{"CLOB inline (go-ora redefines it)", "LongVarChar", "a,b", "", nil, `"a,b"`, ""},
		{"NCLOB over the field limit", "OCIClobLocator", strings.Repeat("日", maxFieldChars+1), "", nil, "", "131073 characters, more than the field limit"},
		{"LONG", "LONG", "long text", "", nil, "long text", ""},
		{"ROWID", "ROWID", "AAAR3sAAEAAAACXAAA", "", nil, "AAAR3sAAEAAAACXAAA", ""},
		{"INTERVAL YEAR TO MONTH", "IntervalYM_DTY", converters.ConvertIntervalYM_DTY([]byte{0x80, 0, 0, 1, 62}), "", nil, "+01-02", ""},
		{"INTERVAL DAY TO SECOND", "IntervalDS_DTY", converters.ConvertIntervalDS_DTY([]byte{0x80, 0, 0, 1, 62, 63, 64, 0x80, 0, 0, 0}), "", nil, "+01 02:03:04.000000", ""},

		// Binary types are refused.
		{"RAW", "RAW", []byte{0xde, 0xad}, "", nil, "", "binary"},
		{"LONG RAW / inline BLOB", "LongRaw", []byte{1}, "", nil, "", "binary"},
		{"BLOB", "OCIBlobLocator", []byte{1}, "", nil, "", "binary"},
		{"BOOLEAN (23ai)", "TNSType(252)", converters.DecodeBool([]byte{1, 1}), "", nil, "true", ""},
	}
	runOracleCases(t, cases)
}

// TestGoOraBinaryFloat shows why BINARY_FLOAT columns are selected as
// BINARY_DOUBLE: go-ora's own BINARY_FLOAT decoder changes values. If this
// test starts failing, go-ora was fixed and dialect.selectCol's CAST can go.
func TestGoOraBinaryFloat(t *testing.T) {
	for _, f := range []float32{0.7, 1.5e-7} {
		got := converters.ConvertBinaryFloat(oracleFloatWire(uint64(math.Float32bits(f)), 4))
		if float32(got) == f {
			t.Errorf("go-ora decodes BINARY_FLOAT %v exactly now", f)
		}
	}
}

// TestOracleBinaryFloatColumn runs a BINARY_FLOAT column through the Oracle
// engine: it is selected as BINARY_DOUBLE and written as the float32.
func TestOracleBinaryFloatColumn(t *testing.T) {
	f := &fakeOracle{cols: []string{"ID", "F"}, types: []string{"NUMBER", "IBFloat"}}
	for i, x := range []float32{0.7, 1.5e-7, -3.25} {
		f.rows = append(f.rows, []driver.Value{goraNumber(t, string(rune('1'+i))), float64(x)})
	}
	src := newFakeOracleSource(t, f, "")
	res, err := src.Extract(t.Context(), Table{Name: "BF", From: "T", OrderBy: []string{"F"},
		Fields: []Field{{Column: "ID", Name: "Id__c"}, {Column: "F", Name: "F__c"}}}, Options{Dir: t.TempDir(), BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if q := f.queries[len(f.queries)-1]; !strings.HasPrefix(q, `SELECT "ID", CAST("F" AS BINARY_DOUBLE) "F" FROM T`) {
		t.Errorf("query %s", q)
	}
	got := append(readCSV(t, res.Batches[0].Path), readCSV(t, res.Batches[1].Path)[1:]...)
	want := [][]string{{"Id__c", "F__c"}, {"1", "0.7"}, {"2", "0.00000015"}, {"3", "-3.25"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if k := res.Batches[0].LastKey; len(k) != 1 || k[0] != "1.5e-07" {
		t.Errorf("LastKey %q, want the float32's shortest text", k)
	}
}
