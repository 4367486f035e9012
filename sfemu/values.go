package sfemu

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// rowErr is one record-level failure: the status code, message and fields
// Salesforce reports in sf__Error and in REST error arrays (6.3, 3.3).
type rowErr struct {
	code   string
	msg    string
	fields []string
}

// bulkText renders the sf__Error value "<CODE>:<message>:<fields> --", or
// "<CODE>:<message>:--" when no field is named (salesforce-api.md 3.3).
// Several fields are joined with a space [I: §9 item 7].
func (e *rowErr) bulkText() string {
	var b strings.Builder
	b.Grow(len(e.code) + len(e.msg) + 8)
	b.WriteString(e.code)
	b.WriteByte(':')
	b.WriteString(e.msg)
	b.WriteByte(':')
	if len(e.fields) > 0 {
		b.WriteString(strings.Join(e.fields, " "))
		b.WriteByte(' ')
	}
	b.WriteString("--")
	return b.String()
}

func (e *rowErr) item() errItem {
	fields := e.fields
	if fields == nil {
		fields = []string{}
	}
	return errItem{Message: e.msg, ErrorCode: e.code, Fields: fields}
}

func errTooLong(f *field, v []byte) *rowErr {
	return &rowErr{"STRING_TOO_LONG", f.label + ": data value too large: " + string(v) + " (max length=" + strconv.Itoa(f.length) + ")", []string{f.name}}
}

// errWrongType is Salesforce's message for a value that does not parse as
// the field's type [I: code and text as seen for the SOAP/REST APIs].
func errWrongType(f *field, v []byte) *rowErr {
	return &rowErr{"INVALID_TYPE_ON_FIELD_IN_RECORD", f.label + ": value not of required type: " + string(v), []string{f.name}}
}

func errRequired(names []string) *rowErr {
	return &rowErr{"REQUIRED_FIELD_MISSING", "Required fields are missing: [" + strings.Join(names, ", ") + "]", names}
}

// convertValue checks a non-empty text value against the field's type and
// appends its canonical stored form to dst. The canonical forms are:
// text as given, picklists as defined, booleans true/false, numbers in
// plain decimal, dates yyyy-MM-dd, datetimes 2006-01-02T15:04:05.000+0000
// in UTC, references as 18-character IDs.
func convertValue(f *field, v []byte, dst []byte) ([]byte, *rowErr) {
	switch f.kind {
	case kindString:
		if !fitsLength(v, f.length) {
			return dst, errTooLong(f, v)
		}
		return append(dst, v...), nil
	case kindEmail:
		if !fitsLength(v, f.length) {
			return dst, errTooLong(f, v)
		}
		if !validEmail(v) {
			return dst, &rowErr{"INVALID_EMAIL_ADDRESS", f.label + ": invalid email address: " + string(v), []string{f.name}}
		}
		return append(dst, v...), nil
	case kindPicklist:
		if canon, ok := f.picklistValue(v); ok {
			return append(dst, canon...), nil
		}
		if f.restricted {
			return dst, &rowErr{"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value for restricted picklist field: " + string(v), []string{f.name}}
		}
		if !fitsLength(v, f.length) {
			return dst, errTooLong(f, v)
		}
		return append(dst, v...), nil
	case kindMultiPicklist:
		start := len(dst)
		for i, part := range strings.Split(string(v), ";") {
			canon, ok := f.valueSet[strings.ToLower(part)]
			if !ok {
				if f.restricted {
					return dst[:start], &rowErr{"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value for restricted picklist field: " + part, []string{f.name}}
				}
				canon = part
			}
			if i > 0 {
				dst = append(dst, ';')
			}
			dst = append(dst, canon...)
		}
		return dst, nil
	case kindBoolean:
		// Only true/false are established for Bulk CSV (salesforce-api.md
		// 4.2); other spellings are refused [I: §9 item 8].
		switch {
		case len(v) == 4 && (v[0]|0x20) == 't' && (v[1]|0x20) == 'r' && (v[2]|0x20) == 'u' && (v[3]|0x20) == 'e':
			return append(dst, "true"...), nil
		case len(v) == 5 && (v[0]|0x20) == 'f' && (v[1]|0x20) == 'a' && (v[2]|0x20) == 'l' && (v[3]|0x20) == 's' && (v[4]|0x20) == 'e':
			return append(dst, "false"...), nil
		}
		return dst, errWrongType(f, v)
	case kindInt:
		digits := v
		if len(digits) > 0 && (digits[0] == '-' || digits[0] == '+') {
			digits = digits[1:]
		}
		if len(digits) == 0 {
			return dst, errWrongType(f, v)
		}
		for _, c := range digits {
			if c < '0' || c > '9' {
				return dst, errWrongType(f, v)
			}
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || len(strings.TrimLeft(string(digits), "0")) > f.precision {
			return dst, errRange(f, v)
		}
		return strconv.AppendInt(dst, n, 10), nil
	case kindDouble:
		if out, ok := appendPlainDecimal(dst, v, f); ok {
			return out, nil
		}
		if !decimalSyntax(v) {
			return dst, errWrongType(f, v)
		}
		x, err := strconv.ParseFloat(unsafeString(v), 64)
		if err != nil || math.IsInf(x, 0) {
			return dst, errRange(f, v)
		}
		if f.scale >= 0 && f.scale < 18 {
			p := pow10[f.scale]
			if r := math.Round(x * p); !math.IsInf(r, 0) {
				x = r / p
			}
		}
		if math.Abs(x) >= pow10[min(f.precision-f.scale, 30)] {
			return dst, errRange(f, v)
		}
		if x == 0 {
			x = 0 // no negative zero
		}
		return strconv.AppendFloat(dst, x, 'f', -1, 64), nil
	case kindDate:
		if len(v) != 10 || !validDate(v) {
			return dst, errWrongType(f, v)
		}
		return append(dst, v...), nil
	case kindDateTime:
		t, ok := parseDateTime(v)
		if !ok {
			return dst, errWrongType(f, v)
		}
		if len(v) == 24 && v[10] == 'T' && v[19] == '.' && v[23] == 'Z' {
			// Already UTC with milliseconds: only the zone is spelled differently.
			dst = append(dst, v[:23]...)
			return append(dst, "+0000"...), nil
		}
		return t.UTC().AppendFormat(dst, jsonTime), nil
	case kindReference, kindID:
		return dst, errWrongType(f, v) // references are resolved by the caller
	}
	return append(dst, v...), nil
}

var pow10 = func() [31]float64 {
	var p [31]float64
	x := 1.0
	for i := range p {
		p[i] = x
		x *= 10
	}
	return p
}()

// errRange is the number-out-of-range failure [I: text of the SOAP/REST API].
func errRange(f *field, v []byte) *rowErr {
	return &rowErr{"NUMBER_OUTSIDE_VALID_RANGE", f.label + ": value outside of valid range on numeric field: " + string(v), []string{f.name}}
}

// jsonTime is how Salesforce writes datetimes in JSON (salesforce-api.md §0).
const jsonTime = "2006-01-02T15:04:05.000-0700"

// fitsLength reports whether v has at most n characters (not bytes).
func fitsLength(v []byte, n int) bool {
	if len(v) <= n {
		return true
	}
	if len(v) > 4*n {
		return false
	}
	return utf8.RuneCount(v) <= n
}

func validEmail(v []byte) bool {
	at := -1
	for i, c := range v {
		switch {
		case c == '@':
			if at >= 0 {
				return false
			}
			at = i
		case c == ' ' || c == ',' || c == ';' || c == '<' || c == '>':
			return false
		}
	}
	if at <= 0 || at == len(v)-1 {
		return false
	}
	dom := v[at+1:]
	dot := strings.LastIndexByte(string(dom), '.')
	return dot > 0 && dot < len(dom)-1
}

// decimalSyntax accepts [+-]digits[.digits][(e|E)[+-]digits]: the number
// forms the Bulk API documents (no thousands separators, '.' decimal
// point, scientific notation allowed; salesforce-api.md 4.2).
func decimalSyntax(v []byte) bool {
	i := 0
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		i++
	}
	digits := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
		digits++
	}
	if i < len(v) && v[i] == '.' {
		i++
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		exp := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(v)
}

func num2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// validDate checks yyyy-MM-dd, including the day of the month.
func validDate(v []byte) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	y1, ok1 := num2(v[0:2])
	y2, ok2 := num2(v[2:4])
	m, ok3 := num2(v[5:7])
	d, ok4 := num2(v[8:10])
	if !ok1 || !ok2 || !ok3 || !ok4 || m < 1 || m > 12 || d < 1 {
		return false
	}
	y := y1*100 + y2
	if y < 1700 || y > 4000 {
		// Salesforce stores dates between 1700 and 4000 [D].
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && (y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		days = 29
	}
	return d <= days
}

// parseDateTime accepts yyyy-MM-ddTHH:mm:ss[.SSS][Z|±HH:mm|±HHmm]; a value
// without zone is taken as UTC [I] (salesforce-api.md 4.2).
func parseDateTime(v []byte) (time.Time, bool) {
	if len(v) < 19 || !validDate(v[:10]) || (v[10] != 'T' && v[10] != ' ') || v[13] != ':' || v[16] != ':' {
		return time.Time{}, false
	}
	hh, ok1 := num2(v[11:13])
	mm, ok2 := num2(v[14:16])
	ss, ok3 := num2(v[17:19])
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, false
	}
	rest := v[19:]
	nanos := 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		scale := 100_000_000
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			if scale > 0 {
				nanos += int(rest[i]-'0') * scale
				scale /= 10
			}
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	offset := 0
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case (rest[0] == '+' || rest[0] == '-') && (len(rest) == 6 && rest[3] == ':' || len(rest) == 5):
		oh, okh := num2(rest[1:3])
		om, okm := num2(rest[len(rest)-2:])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	y := int(v[0]-'0')*1000 + int(v[1]-'0')*100 + int(v[2]-'0')*10 + int(v[3]-'0')
	m := int(v[5]-'0')*10 + int(v[6]-'0')
	d := int(v[8]-'0')*10 + int(v[9]-'0')
	t := time.Date(y, time.Month(m), d, hh, mm, ss, nanos, time.UTC).Add(-time.Duration(offset) * time.Second)
	return t.Truncate(time.Millisecond), true
}

// picklistValue finds the defined value matching v, exactly or ignoring
// case, without allocating for values up to 128 bytes.
func (f *field) picklistValue(v []byte) (string, bool) {
	if len(f.values) <= 8 {
		// A short list: comparing is cheaper than hashing.
		for _, c := range f.values {
			if c == unsafeString(v) {
				return c, true
			}
		}
	} else if canon, ok := f.valueSet[unsafeString(v)]; ok && canon == unsafeString(v) {
		return canon, true
	}
	var buf [128]byte
	key := foldKey(buf[:0], v, false)
	canon, ok := f.valueSet[unsafeString(key)]
	return canon, ok
}

// foldKey appends the case-folded form of v used as an index key for
// case-insensitive unique and external-ID fields.
func foldKey[T string | []byte](dst []byte, v T, caseSensitive bool) []byte {
	if caseSensitive {
		return append(dst, v...)
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return append(dst, strings.ToLower(string(v))...)
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// javaDouble formats x as Java's Double.toString does, which is how
// Salesforce re-serialises numbers in Bulk results (912260031 comes back
// as 9.12260031E8, salesforce-api.md 3.2 [D]): plain notation with at
// least one decimal for 1e-3 <= |x| < 1e7, else d.dddE<exp>.
func javaDouble(dst []byte, x float64) []byte {
	if x == 0 {
		return append(dst, "0.0"...)
	}
	ax := math.Abs(x)
	if ax >= 1e-3 && ax < 1e7 {
		start := len(dst)
		dst = strconv.AppendFloat(dst, x, 'f', -1, 64)
		if !strings.ContainsRune(string(dst[start:]), '.') {
			dst = append(dst, ".0"...)
		}
		return dst
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], x, 'e', -1, 64) // -d.ddde+XX
	mant, exp, _ := strings.Cut(string(e), "e")
	dst = append(dst, mant...)
	if !strings.ContainsRune(mant, '.') {
		dst = append(dst, ".0"...)
	}
	dst = append(dst, 'E')
	if exp[0] == '-' {
		dst = append(dst, '-')
	}
	exp = strings.TrimLeft(exp[1:], "0")
	if exp == "" {
		exp = "0"
	}
	return append(dst, exp...)
}

// appendPlainDecimal is the stored form of a double/currency/percent value
// for the common plain decimals, without parsing a float: an optional
// minus, integer digits (no leading zero but a lone 0), an optional
// fraction of at most scale digits (so no rounding), at most 15 digits in
// all (so the shortest text of the parsed double is these digits) and no
// more integer digits than precision - scale (so in range). The stored
// form is then the value without trailing fraction zeros, and 0 for any
// zero. ok is false for any other text, which takes the general path.
func appendPlainDecimal(dst, v []byte, f *field) ([]byte, bool) {
	if f.scale < 0 || f.scale >= 18 || f.precision-f.scale < 0 {
		return dst, false
	}
	i := 0
	neg := i < len(v) && v[i] == '-'
	if neg {
		i++
	}
	intStart := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	intDigits := i - intStart
	if intDigits == 0 || (intDigits > 1 && v[intStart] == '0') {
		return dst, false
	}
	zeroInt := intDigits == 1 && v[intStart] == '0'
	if !zeroInt && intDigits > f.precision-f.scale {
		return dst, false
	}
	end := i
	fracDigits := 0
	if i < len(v) {
		if v[i] != '.' {
			return dst, false
		}
		i++
		fracStart := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		fracDigits = i - fracStart
		if i != len(v) {
			return dst, false
		}
		end = i
		for end > fracStart && v[end-1] == '0' {
			end--
		}
		if end == fracStart {
			end = fracStart - 1 // no fraction left: drop the point
		}
	}
	if fracDigits > f.scale || intDigits+fracDigits > 15 {
		return dst, false
	}
	if zeroInt && end == intStart+1 {
		return append(dst, '0'), true // 0, -0, 0.000
	}
	return append(dst, v[:end]...), true
}
