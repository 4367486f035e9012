package sfemu

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// The SOQL subset of design.md §5 (and a little more), enough for tests
// to see what landed (salesforce-api.md §8):
//
//	SELECT COUNT() FROM X [WHERE ...]
//	SELECT f1, f2, Rel__r.f3 FROM X [WHERE cond] [ORDER BY f [ASC|DESC]] [LIMIT n] [OFFSET n]
//
// cond: f op literal, with op one of = != <> < <= > >= LIKE IN NOT IN,
// joined by AND / OR / NOT and parentheses. Literals: 'text' (with \'
// escapes), numbers, true, false, null, dates and datetimes. String
// comparisons are case-insensitive, as in SOQL.

type queryCursor struct {
	obj    *object
	fields []selField
	seqs   []uint32
	pos    int
}

type selField struct {
	f   *field // field on the object, or the reference field for a relationship
	sub *field // parent field for Rel.Field
}

type soqlQuery struct {
	obj     *object
	count   bool
	fields  []selField
	where   cond
	orderBy *field
	desc    bool
	limit   int
	offset  int
}

// cond is a WHERE expression.
type cond interface {
	eval(t *table, rec *record, seq uint32) bool
}

type andCond struct{ a, b cond }
type orCond struct{ a, b cond }
type notCond struct{ a cond }

func (c andCond) eval(t *table, r *record, s uint32) bool {
	return c.a.eval(t, r, s) && c.b.eval(t, r, s)
}
func (c orCond) eval(t *table, r *record, s uint32) bool {
	return c.a.eval(t, r, s) || c.b.eval(t, r, s)
}
func (c notCond) eval(t *table, r *record, s uint32) bool { return !c.a.eval(t, r, s) }

type cmpCond struct {
	f    *field
	op   string
	vals []literal    // one, or several for IN
	like *likePattern // for LIKE
}

type literal struct {
	null bool
	text string
	num  float64
	isN  bool
	str  bool // a quoted string
}

func fieldText(t *table, r *record, seq uint32, f *field) string {
	switch f.system {
	case "Id":
		return t.id(seq)
	case "CreatedDate":
		return fmtTime(timeMillis(r.created))
	case "LastModifiedDate", "SystemModstamp":
		return fmtTime(timeMillis(r.modified))
	}
	return valueAt(r.vals, f.slot)
}

func (c cmpCond) eval(t *table, r *record, seq uint32) bool {
	v := fieldText(t, r, seq, c.f)
	switch c.op {
	case "IN", "NOT IN":
		in := false
		for _, l := range c.vals {
			if compare(c.f, v, l) == 0 {
				in = true
				break
			}
		}
		return in == (c.op == "IN")
	case "LIKE":
		return c.like.match(strings.ToLower(v))
	}
	l := c.vals[0]
	if l.null || v == "" {
		eq := l.null && v == ""
		switch c.op {
		case "=":
			return eq
		case "!=":
			return !eq
		}
		return false
	}
	n := compare(c.f, v, l)
	switch c.op {
	case "=":
		return n == 0
	case "!=":
		return n != 0
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	case ">=":
		return n >= 0
	}
	return false
}

// compare orders a stored value against a literal by the field's type.
func compare(f *field, v string, l literal) int {
	if l.null {
		if v == "" {
			return 0
		}
		return 1
	}
	switch f.kind {
	case kindInt, kindDouble:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || !l.isN {
			return strings.Compare(v, l.text)
		}
		switch {
		case x < l.num:
			return -1
		case x > l.num:
			return 1
		}
		return 0
	case kindID, kindReference:
		return strings.Compare(id15(v), id15(l.text))
	case kindDateTime:
		if t, ok := parseDateTime([]byte(l.text)); ok {
			return strings.Compare(v, fmtTime(t))
		}
	}
	return strings.Compare(strings.ToLower(v), strings.ToLower(l.text))
}

func errMalformed(msg string) *apiError {
	return newAPIError(http.StatusBadRequest, "MALFORMED_QUERY", msg)
}

// soqlLexer splits SOQL into tokens.
type soqlLexer struct {
	toks []string
	pos  int
}

func lexSOQL(q string) ([]string, *apiError) {
	var toks []string
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '\'':
			var b strings.Builder
			b.WriteByte('\'')
			i++
			closed := false
			for i < len(q) {
				if q[i] == '\\' && i+1 < len(q) {
					b.WriteByte(q[i+1])
					i += 2
					continue
				}
				if q[i] == '\'' {
					closed = true
					i++
					break
				}
				b.WriteByte(q[i])
				i++
			}
			if !closed {
				return nil, errMalformed("unterminated string literal in query: " + excerpt.Of(q))
			}
			toks = append(toks, b.String())
		case strings.ContainsRune("(),", rune(c)):
			toks = append(toks, string(c))
			i++
		case c == '!' || c == '<' || c == '>' || c == '=':
			j := i + 1
			if j < len(q) && (q[j] == '=' || (c == '<' && q[j] == '>')) {
				j++
			}
			toks = append(toks, q[i:j])
			i = j
		default:
			j := i
			for j < len(q) && !unicode.IsSpace(rune(q[j])) && !strings.ContainsRune("(),'!<>=", rune(q[j])) {
				j++
			}
			toks = append(toks, q[i:j])
			i = j
		}
	}
	return toks, nil
}

func (l *soqlLexer) peek() string {
	if l.pos < len(l.toks) {
		return l.toks[l.pos]
	}
	return ""
}

func (l *soqlLexer) next() string {
	t := l.peek()
	l.pos++
	return t
}

func (l *soqlLexer) is(word string) bool { return strings.EqualFold(l.peek(), word) }

// parseSOQL parses the supported subset against the org.
func (s *Server) parseSOQL(q string) (*soqlQuery, *apiError) {
	toks, err := lexSOQL(q)
	if err != nil {
		return nil, err
	}
	l := &soqlLexer{toks: toks}
	if !l.is("SELECT") {
		return nil, errMalformed("unexpected token: '" + excerpt.Of(l.peek()) + "'; a query starts with SELECT")
	}
	l.next()
	var names []string
	count := false
	for {
		tok := l.next()
		if tok == "" {
			return nil, errMalformed("unexpected end of query after SELECT")
		}
		if strings.EqualFold(tok, "COUNT") && l.peek() == "(" {
			l.next()
			if l.next() != ")" {
				return nil, errMalformed("only COUNT() is supported")
			}
			count = true
		} else {
			names = append(names, tok)
		}
		if l.peek() != "," {
			break
		}
		l.next()
	}
	if count && len(names) > 0 {
		return nil, errMalformed("COUNT() cannot be combined with other fields")
	}
	if !l.is("FROM") {
		return nil, errMalformed("unexpected token: '" + excerpt.Of(l.peek()) + "'; expected FROM")
	}
	l.next()
	objName := l.next()
	if objName == "" {
		return nil, errMalformed("unexpected end of query: expected an object name after FROM")
	}
	ob := s.org.object(objName)
	if ob == nil {
		return nil, newAPIError(http.StatusBadRequest, "INVALID_TYPE",
			"sObject type '"+excerpt.Of(objName)+"' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.")
	}
	sq := &soqlQuery{obj: ob, count: count, limit: -1}
	for _, n := range names {
		sf, err := selectField(ob, n)
		if err != nil {
			return nil, err
		}
		sq.fields = append(sq.fields, sf)
	}
	if l.is("WHERE") {
		l.next()
		c, err := parseOr(l, ob)
		if err != nil {
			return nil, err
		}
		sq.where = c
	}
	if l.is("ORDER") {
		l.next()
		if !l.is("BY") {
			return nil, errMalformed("expected BY after ORDER")
		}
		l.next()
		name := l.next()
		if name == "" {
			return nil, errMalformed("unexpected end of query: expected a field after ORDER BY")
		}
		f := ob.byName[strings.ToLower(name)]
		if f == nil {
			return nil, errNoColumn(name, ob)
		}
		sq.orderBy = f
		if l.is("ASC") {
			l.next()
		} else if l.is("DESC") {
			l.next()
			sq.desc = true
		}
	}
	if l.is("LIMIT") {
		l.next()
		n, err := strconv.Atoi(l.next())
		if err != nil || n < 0 {
			return nil, errMalformed("LIMIT needs a non-negative number")
		}
		sq.limit = n
	}
	if l.is("OFFSET") {
		l.next()
		n, err := strconv.Atoi(l.next())
		if err != nil || n < 0 {
			return nil, errMalformed("OFFSET needs a non-negative number")
		}
		sq.offset = n
	}
	if l.peek() != "" {
		return nil, errMalformed("unexpected token: '" + excerpt.Of(l.peek()) + "'")
	}
	return sq, nil
}

func errNoColumn(name string, ob *object) *apiError {
	return newAPIError(http.StatusBadRequest, "INVALID_FIELD",
		fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", excerpt.Of(name), ob.name))
}

func selectField(ob *object, name string) (selField, *apiError) {
	if rel, fname, ok := strings.Cut(name, "."); ok {
		rf := ob.byRel[strings.ToLower(rel)]
		if rf == nil {
			return selField{}, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("Didn't understand relationship '%s' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.", excerpt.Of(rel)))
		}
		sub := rf.refObj.byName[strings.ToLower(fname)]
		if sub == nil {
			return selField{}, errNoColumn(fname, rf.refObj)
		}
		return selField{f: rf, sub: sub}, nil
	}
	f := ob.byName[strings.ToLower(name)]
	if f == nil {
		return selField{}, errNoColumn(name, ob)
	}
	return selField{f: f}, nil
}

func parseOr(l *soqlLexer, ob *object) (cond, *apiError) {
	a, err := parseAnd(l, ob)
	if err != nil {
		return nil, err
	}
	for l.is("OR") {
		l.next()
		b, err := parseAnd(l, ob)
		if err != nil {
			return nil, err
		}
		a = orCond{a, b}
	}
	return a, nil
}

func parseAnd(l *soqlLexer, ob *object) (cond, *apiError) {
	a, err := parseUnary(l, ob)
	if err != nil {
		return nil, err
	}
	for l.is("AND") {
		l.next()
		b, err := parseUnary(l, ob)
		if err != nil {
			return nil, err
		}
		a = andCond{a, b}
	}
	return a, nil
}

func parseUnary(l *soqlLexer, ob *object) (cond, *apiError) {
	if l.is("NOT") {
		l.next()
		c, err := parseUnary(l, ob)
		if err != nil {
			return nil, err
		}
		return notCond{c}, nil
	}
	if l.peek() == "(" {
		l.next()
		c, err := parseOr(l, ob)
		if err != nil {
			return nil, err
		}
		if l.next() != ")" {
			return nil, errMalformed("missing ')' in WHERE")
		}
		return c, nil
	}
	name := l.next()
	f := ob.byName[strings.ToLower(name)]
	if f == nil {
		if name == "" {
			return nil, errMalformed("unexpected end of query in WHERE")
		}
		return nil, errNoColumn(name, ob)
	}
	op := strings.ToUpper(l.next())
	if op == "NOT" && l.is("IN") {
		l.next()
		op = "NOT IN"
	}
	if op == "<>" {
		op = "!="
	}
	c := cmpCond{f: f, op: op}
	switch op {
	case "=", "!=", "<", "<=", ">", ">=", "LIKE":
		lit, err := parseLiteral(l)
		if err != nil {
			return nil, err
		}
		c.vals = []literal{lit}
		if op == "LIKE" {
			if !lit.str {
				return nil, errMalformed("LIKE needs a quoted string value")
			}
			c.like = compileLike(lit.text)
		}
	case "IN", "NOT IN":
		if l.next() != "(" {
			return nil, errMalformed("expected '(' after IN")
		}
		for {
			lit, err := parseLiteral(l)
			if err != nil {
				return nil, err
			}
			c.vals = append(c.vals, lit)
			t := l.next()
			if t == ")" {
				break
			}
			if t != "," {
				return nil, errMalformed("expected ',' or ')' in IN list")
			}
		}
	default:
		return nil, errMalformed("unexpected token: '" + excerpt.Of(op) + "' after " + f.name)
	}
	return c, nil
}

func parseLiteral(l *soqlLexer) (literal, *apiError) {
	tok := l.next()
	switch {
	case tok == "":
		return literal{}, errMalformed("unexpected end of query: expected a value")
	case strings.HasPrefix(tok, "'"):
		return literal{text: tok[1:], str: true}, nil
	case strings.EqualFold(tok, "null"):
		return literal{null: true}, nil
	case strings.EqualFold(tok, "true"), strings.EqualFold(tok, "false"):
		return literal{text: strings.ToLower(tok)}, nil
	}
	if x, err := strconv.ParseFloat(tok, 64); err == nil {
		return literal{text: tok, num: x, isN: true}, nil
	}
	if validDate([]byte(tok)) {
		return literal{text: tok}, nil
	}
	if _, ok := parseDateTime([]byte(tok)); ok {
		return literal{text: tok}, nil
	}
	return literal{}, errMalformed("unexpected token: '" + excerpt.Of(tok) + "'; string values need single quotes")
}

// handleQuery serves GET /query?q=SOQL (salesforce-api.md 8).
func (s *Server) handleQuery(rq *request) (*reply, error) {
	q, aerr := queryParam(rq.r, "q")
	if aerr != nil {
		return nil, aerr
	}
	if strings.TrimSpace(q) == "" {
		return nil, errMalformed("the q parameter with a SOQL query is required")
	}
	if rep, ok, aerr := s.sysQuery(rq, q); ok {
		if aerr != nil {
			return nil, aerr
		}
		return rep, nil
	}
	sq, aerr := s.parseSOQL(q)
	if aerr != nil {
		return nil, aerr
	}
	seqs, rows, aerr := s.selectRows(rq.r.Context(), sq)
	if aerr != nil {
		return nil, aerr
	}
	if sq.orderBy != nil {
		cmp := orderCompare(sq.orderBy)
		sort.SliceStable(rows, func(a, b int) bool {
			n := cmp(&rows[a], &rows[b])
			if sq.desc {
				return n > 0
			}
			return n < 0
		})
		for i := range rows {
			seqs[i] = rows[i].seq
		}
	}
	if sq.offset > 0 {
		seqs = seqs[min(sq.offset, len(seqs)):]
	}
	if sq.limit >= 0 && sq.limit < len(seqs) {
		seqs = seqs[:sq.limit]
	}
	if sq.count {
		return &reply{status: http.StatusOK, body: map[string]any{"totalSize": len(seqs), "done": true, "records": []any{}}}, nil
	}
	cur := &queryCursor{obj: sq.obj, fields: sq.fields, seqs: seqs}
	return queryReply(s.store.queryPage(cur, s.opts.queryPageSize, rq.version)), nil
}

// queryReply answers a query page rendered by the store.
func queryReply(page []byte) *reply {
	return &reply{status: http.StatusOK, contentType: "application/json;charset=UTF-8", raw: page}
}

// scanChunk is how many records a query copies per hold of the store lock.
const scanChunk = 4096

// matchRow is a record a query selected, with its ORDER BY value (kept
// only for ordered queries).
type matchRow struct {
	seq   uint32
	key   string  // the ORDER BY field's value
	num   float64 // key as a number (0 when it is not one)
	numOK bool
}

// selectRows returns the live records that match the query's WHERE, in
// creation order (and, for ORDER BY, with their sort values). It holds the
// store lock only to copy scanChunk records at a time (orgStore.copyLive;
// a record's values are an immutable string, so the copy stays valid) and
// evaluates the
// condition without the lock, so however slow a condition is, other
// requests wait at most for one copy. Records changed while the scan runs
// are seen either before or after the change. The scan stops when ctx
// ends: QUERY_TIMEOUT at the request deadline [I].
func (s *Server) selectRows(ctx context.Context, sq *soqlQuery) (out []uint32, rows []matchRow, _ *apiError) {
	t := s.store.table(sq.obj)
	done := ctx.Done()
	var (
		snap []record
		seqs []uint32
		end  int
	)
	for next := 1; ; {
		snap, seqs, end = s.store.copyLive(t, next, snap[:0], seqs[:0])
		if end < next {
			return out, rows, nil
		}
		for i := range snap {
			if i&15 == 0 {
				select {
				case <-done:
					return nil, nil, errQueryStopped(ctx)
				default:
				}
			}
			r, seq := &snap[i], seqs[i]
			if sq.where != nil && !sq.where.eval(t, r, seq) {
				continue
			}
			out = append(out, seq)
			if f := sq.orderBy; f != nil {
				m := matchRow{seq: seq, key: fieldText(t, r, seq, f)}
				x, err := strconv.ParseFloat(m.key, 64)
				m.num, m.numOK = x, err == nil
				if !m.numOK {
					m.num = 0
				}
				rows = append(rows, m)
			}
		}
		next = end + 1
	}
}

// errQueryStopped answers a query whose request ended while it ran:
// QUERY_TIMEOUT at the deadline (the code and text Salesforce uses for a
// query that runs too long; the status is [I]), or a 503 when the client
// left or the server is stopping (nobody reads that answer).
func errQueryStopped(ctx context.Context) *apiError {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return newAPIError(http.StatusBadRequest, "QUERY_TIMEOUT", "Your query request was running for too long.")
	}
	return newAPIError(http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", "The query was stopped: the request ended or the server is shutting down.")
}

// orderCompare orders rows by f as compare does, using the numbers parsed
// once per row.
func orderCompare(f *field) func(a, b *matchRow) int {
	if f.kind == kindInt || f.kind == kindDouble {
		return func(a, b *matchRow) int {
			switch {
			case !a.numOK:
				return strings.Compare(a.key, b.key)
			case a.num < b.num:
				return -1
			case a.num > b.num:
				return 1
			}
			return 0
		}
	}
	return func(a, b *matchRow) int {
		return compare(f, a.key, literal{text: b.key, num: b.num, isN: true})
	}
}

// handleQueryMore serves GET /query/{locator}: the next page.
func (s *Server) handleQueryMore(rq *request) (*reply, error) {
	page, aerr := s.store.nextQueryPage(rq.params[0], s.opts.queryPageSize, rq.version)
	if aerr != nil {
		return nil, aerr
	}
	return queryReply(page), nil
}

func timeMillis(ms int64) time.Time { return time.UnixMilli(ms) }
