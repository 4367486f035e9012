package airflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ConnEnvPrefix and VarEnvPrefix are Airflow's environment-variable prefixes
// for connections and variables.
const (
	ConnEnvPrefix = "AIRFLOW_CONN_"
	VarEnvPrefix  = "AIRFLOW_VAR_"
)

// extraKey is the query parameter under which Airflow's get_uri stores an
// extra that cannot be expressed as flat key=value pairs.
const extraKey = "__extra__"

// ParseError reports a connection value that Airflow itself would reject.
// Its message names the connection and the environment variable, never the
// value (which may hold a password).
type ParseError struct {
	ConnID string
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("connection %q (%s): %s", e.ConnID, EnvName(ConnEnvPrefix, e.ConnID), e.Reason)
}

// ConfigError marks the error as a settings problem (exit code 2).
func (e *ParseError) ConfigError() bool { return true }

// NotFoundError reports a connection that is not defined.
type NotFoundError struct {
	ConnID string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("connection %q is not defined: set %s to its URI (e.g. postgres://user:pass@host:5432/db) or JSON form (e.g. {\"conn_type\": \"postgres\", \"host\": \"...\"})",
		e.ConnID, EnvName(ConnEnvPrefix, e.ConnID))
}

// ConfigError marks the error as a settings problem (exit code 2).
func (e *NotFoundError) ConfigError() bool { return true }

// EnvName returns the environment variable that holds conn id or variable
// key id under prefix: Airflow upper-cases the id.
func EnvName(prefix, id string) string { return prefix + strings.ToUpper(id) }

// LookupConnection reads connection id from AIRFLOW_CONN_<ID> through getenv,
// as Airflow's environment-variables secrets backend does. An unset or empty
// variable gives a *NotFoundError.
func LookupConnection(getenv func(string) string, id string) (Connection, error) {
	v := ""
	if getenv != nil {
		v = getenv(EnvName(ConnEnvPrefix, id))
	}
	if strings.TrimSpace(v) == "" {
		return Connection{}, &NotFoundError{ConnID: id}
	}
	return ParseConnection(id, v)
}

// LookupVariable reads Airflow variable key from AIRFLOW_VAR_<KEY>. ok is
// false when the variable is not set.
func LookupVariable(getenv func(string) string, key string) (value string, ok bool) {
	if getenv == nil {
		return "", false
	}
	v := getenv(EnvName(VarEnvPrefix, key))
	return v, v != ""
}

// ParseConnection parses an AIRFLOW_CONN_* value the way Airflow does: a
// value starting with "{" (after trimming spaces) is the JSON form
// (Connection.from_json, Airflow 2.3+), anything else the URI form
// (Connection._parse_from_uri).
func ParseConnection(id, value string) (Connection, error) {
	value = strings.TrimSpace(value)
	if strings.HasPrefix(value, "{") {
		return parseJSON(id, value)
	}
	return parseURI(id, value)
}

func parseURI(id, uri string) (Connection, error) {
	c := Connection{ID: id}
	fail := func(format string, a ...any) (Connection, error) {
		return Connection{}, &ParseError{ConnID: id, Reason: fmt.Sprintf(format, a...)}
	}
	// Airflow allows a protocol inside the host ("http://https://host"), so
	// a URI may hold "://" twice, never more.
	switch n := strings.Count(uri, "://"); {
	case n == 0:
		return fail("not a connection URI: expected <conn-type>://[login[:password]@]host[:port][/schema][?extra=...] or a JSON object")
	case n > 2:
		return fail("invalid connection URI: \"://\" appears %d times (at most twice: <conn-type>://<protocol>://host); percent-encode \"/\" and \":\" inside values", n)
	}
	hostWithProtocol := strings.Count(uri, "://") == 2
	first, err := urlsplit(uri)
	if err != nil {
		return fail("invalid connection URI: %v", err)
	}
	if first.scheme == "" {
		return fail("invalid connection URI: the connection type before \"://\" is missing or has characters other than letters, digits, '+', '-' and '.'")
	}
	c.Type = normalizeConnType(first.scheme)

	// Airflow re-parses the rest with the type stripped (replacing every
	// occurrence, as Python's str.replace does).
	repl := "//"
	if hostWithProtocol {
		repl = ""
	}
	rest := strings.ReplaceAll(uri, first.scheme+"://", repl)
	if hostWithProtocol {
		proto, _, _ := strings.Cut(rest, "://")
		if strings.ContainsAny(proto, "@:") {
			return fail("invalid connection URI: a second \"://\" follows login or port; percent-encode \"/\" and \":\" inside the password (e.g. %%2F, %%3A)")
		}
	}
	parts, err := urlsplit(rest)
	if err != nil {
		return fail("invalid connection URI: %v", err)
	}
	protocol := ""
	if hostWithProtocol {
		protocol = parts.scheme
	}
	host := netlocToHostname(parts)
	if host != "" && protocol != "" {
		host = protocol + "://" + host
	}
	c.Host = host
	if parts.path != "" {
		// Python's path[1:] drops the first character, not the first byte.
		_, size := utf8.DecodeRuneInString(parts.path)
		c.Schema = unquote(parts.path[size:])
	}
	user, _, pass, _ := parts.userinfo()
	c.Login = unquote(user)
	c.Password = unquote(pass)
	port, _, err := parts.port()
	if err != nil {
		// The usual cause: an unencoded "/" or ":" in the password ends the
		// netloc early and what follows looks like a port.
		return fail("invalid connection URI: %v; if the password contains '/', ':', '@', '?' or '#', percent-encode it (e.g. with urllib.parse.quote_plus)", err)
	}
	c.Port = port
	if parts.query != "" {
		pairs := parseQSL(parts.query)
		extra := make(map[string]any, len(pairs))
		for _, kv := range pairs {
			extra[kv[0]] = kv[1] // dict(parse_qsl(...)): the last value wins
		}
		if raw, ok := extra[extraKey].(string); ok {
			m, err := decodeExtra(raw)
			if err != nil {
				return fail("%s: %v", extraKey, err)
			}
			extra = m
		}
		if len(extra) > 0 {
			c.Extra = extra
		}
	}
	return c, nil
}

// netlocToHostname is Airflow's _parse_netloc_to_hostname: Python lower-cases
// hostnames, except that a percent-encoded path used as host (sqlite's
// "sqlite://%2Ftmp%2Fdb.sqlite") is kept as written.
func netlocToHostname(p splitResult) string {
	h := unquote(p.hostname())
	if strings.Contains(h, "/") {
		h = p.netloc
		if i := strings.LastIndexByte(h, '@'); i >= 0 {
			h = h[i+1:]
		}
		if i := strings.IndexByte(h, ':'); i >= 0 {
			h = h[:i]
		}
		h = unquote(h)
	}
	return h
}

// normalizeConnType is Connection._normalize_conn_type.
func normalizeConnType(t string) string {
	if t == "postgresql" {
		return "postgres"
	}
	return strings.ReplaceAll(t, "-", "_")
}

// jsonFields are the keyword arguments Connection.__init__ accepts.
var jsonFields = map[string]bool{
	"conn_type": true, "description": true, "host": true, "login": true, "password": true,
	"schema": true, "port": true, "extra": true, "uri": true, "conn_id": true,
}

func parseJSON(id, value string) (Connection, error) {
	fail := func(format string, a ...any) (Connection, error) {
		return Connection{}, &ParseError{ConnID: id, Reason: fmt.Sprintf(format, a...)}
	}
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	var kw map[string]any
	if err := dec.Decode(&kw); err != nil {
		return fail("invalid JSON connection: %v", sanitizeJSONError(err))
	}
	if dec.More() {
		return fail("invalid JSON connection: unexpected text after the closing '}'")
	}
	var unknown []string
	for k := range kw {
		if !jsonFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fail("unknown key(s) %s in JSON connection; allowed: conn_type, host, login, password, schema, port, extra, description", strings.Join(unknown, ", "))
	}
	// conn_id inside the JSON would clash with the id from the variable name
	// (Python raises "got multiple values for keyword argument").
	if _, ok := kw["conn_id"]; ok {
		return fail("remove \"conn_id\" from the JSON: the connection id comes from the variable name")
	}
	str := func(key string) (string, error) {
		switch v := kw[key].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		default:
			return "", fmt.Errorf("%q must be a string, got %s", key, jsonKind(v))
		}
	}
	if uriVal, ok := kw["uri"]; ok && uriVal != nil {
		for k, v := range kw {
			if k != "uri" && k != "description" && truthy(v) {
				return fail("give either \"uri\" or the separate fields (conn_type, host, ...), not both")
			}
		}
		u, err := str("uri")
		if err != nil {
			return fail("%v", err)
		}
		return parseURI(id, u)
	}

	c := Connection{ID: id}
	var err error
	for _, f := range []struct {
		key string
		dst *string
	}{{"conn_type", &c.Type}, {"host", &c.Host}, {"login", &c.Login}, {"password", &c.Password}, {"schema", &c.Schema}} {
		if *f.dst, err = str(f.key); err != nil {
			return fail("%v", err)
		}
	}
	if c.Type != "" {
		c.Type = normalizeConnType(c.Type)
	}
	if p := kw["port"]; truthy(p) {
		// from_json does int(port): ints and digit strings pass, floats are
		// truncated, anything else is an error.
		switch v := p.(type) {
		case json.Number:
			// Python's int() truncates a float port (1234.0 -> 1234).
			f, err := v.Float64()
			if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
				return fail("expected an integer value for \"port\", got %s", v)
			}
			c.Port = int(f)
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fail("expected an integer value for \"port\", got %q", v)
			}
			c.Port = n
		default:
			return fail("expected an integer value for \"port\", got %s", jsonKind(p))
		}
		if c.Port < 0 || c.Port > 65535 {
			return fail("\"port\" %d is out of range 0-65535", c.Port)
		}
	}
	switch e := kw["extra"].(type) {
	case nil:
	case string:
		if e != "" {
			m, err := decodeExtra(e)
			if err != nil {
				return fail("extra: %v", err)
			}
			c.Extra = m
		}
	case map[string]any:
		if len(e) > 0 {
			c.Extra = normalizeNumbers(e).(map[string]any)
		}
	default:
		if truthy(e) {
			return fail("\"extra\" must be a JSON object (or a string holding one), got %s", jsonKind(e))
		}
	}
	return c, nil
}

// decodeExtra parses an extra given as JSON text; Airflow requires it to be
// a JSON object (Connection._validate_extra).
func decodeExtra(s string) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON (%v): the extra must be a JSON object", sanitizeJSONError(err))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the extra must be a JSON object, got %s", jsonKind(v))
	}
	return normalizeNumbers(m).(map[string]any), nil
}

// normalizeNumbers turns json.Number values into int64 where they are whole
// and float64 otherwise, so extras read naturally (prefetch_rows: 1000).
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
		return x
	}
	return v
}

// truthy is Python's truth value of a decoded JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	}
	return true
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// sanitizeJSONError keeps the position of a syntax error but drops any
// quoted input, which could be part of a password.
func sanitizeJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected a JSON object, got %s", te.Value)
	}
	return "malformed JSON"
}
