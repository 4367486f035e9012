package sfemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// Who the emulated org and its run-as user are, and the endpoints that tell
// a client: the OpenID Connect UserInfo endpoint, the User record of the
// run-as user and the Organization record (salesforce-api.md §10). Tools
// such as the Salesforce CLI read them right after a login to learn the
// username and org behind a token. None of this changes while the
// emulator runs, so it needs no lock and does not live in the store.

// The run-as user and the org. The IDs are in ids.go.
const (
	userName      = "integration@sfemu.example"
	userFirstName = "Integration"
	userLastName  = "User"
	userAlias     = "integ"
	userNickname  = "integration"
	// The user's and the org's time zone and locale: GMT keeps utcOffset
	// fixed all year.
	userTimeZone = "GMT"
	userLocale   = "en_US"
	orgName      = "sfemu"
	// orgInstance is the InstanceName of the Organization record [I: real
	// orgs answer their pod's name, e.g. "USA123"].
	orgInstance = "SFEMU1"
	orgEdition  = "Enterprise Edition"
)

// profileID is the run-as user's profile (key prefix 00e).
var profileID = makeID("00e", 0x1E1)

// kv is one field of a JSON object written in a fixed order (Salesforce
// answers keep their field order, and encoding/json sorts map keys).
type kv struct {
	k string
	v any
}

// orderedJSON encodes fields as one JSON object, in order.
type orderedJSON []kv

func (o orderedJSON) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.k)
		b = append(b, ':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", f.k, err)
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// identityToken checks the token of a call to the identity service
// (UserInfo). It answers the way that service does, not as the REST API:
// 403 and one word of plain text, "Missing_OAuth_Token" or
// "Bad_OAuth_Token" (salesforce-api.md §10.1). The token may come in the
// Authorization header or as the access_token or oauth_token parameter.
func (s *Server) identityToken(r *http.Request) *reply {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
			tok = strings.TrimSpace(t)
		} else {
			return identityRefusal("Bad_OAuth_Token")
		}
	} else if t := r.URL.Query().Get("access_token"); t != "" {
		tok = t
	} else {
		tok = r.URL.Query().Get("oauth_token")
	}
	if tok == "" {
		return identityRefusal("Missing_OAuth_Token")
	}
	if !s.auth.valid(tok, s.now()) {
		return identityRefusal("Bad_OAuth_Token")
	}
	return nil
}

func identityRefusal(word string) *reply {
	return &reply{status: http.StatusForbidden, contentType: "text/plain;charset=UTF-8", raw: []byte(word)}
}

// identityURLs is the "urls" object of UserInfo and the identity URL:
// the APIs the token may call, with the literal "{version}".
func identityURLs(b string) orderedJSON {
	org15 := id15(orgID)
	return orderedJSON{
		{"enterprise", b + "/services/Soap/c/{version}/" + org15},
		{"metadata", b + "/services/Soap/m/{version}/" + org15},
		{"partner", b + "/services/Soap/u/{version}/" + org15},
		{"rest", b + "/services/data/v{version}/"},
		{"sobjects", b + "/services/data/v{version}/sobjects/"},
		{"search", b + "/services/data/v{version}/search/"},
		{"query", b + "/services/data/v{version}/query/"},
		{"recent", b + "/services/data/v{version}/recent/"},
		{"tooling_soap", b + "/services/Soap/T/{version}/" + org15},
		{"tooling_rest", b + "/services/data/v{version}/tooling/"},
		{"profile", b + "/" + userID},
		{"feeds", b + "/services/data/v{version}/chatter/feeds"},
		{"groups", b + "/services/data/v{version}/chatter/groups"},
		{"users", b + "/services/data/v{version}/chatter/users"},
		{"feed_items", b + "/services/data/v{version}/chatter/feed-items"},
		{"feed_elements", b + "/services/data/v{version}/chatter/feed-elements"},
		{"custom_domain", b},
	}
}

// handleIdentity serves GET /id/{org id}/{user id}, the identity URL of
// the token answer: the same facts as UserInfo under the identity
// service's own names, in the real order (salesforce-api.md §10.1). It
// refuses tokens as UserInfo does.
func (s *Server) handleIdentity(rq *request) (*reply, error) {
	if refused := s.identityToken(rq.r); refused != nil {
		return refused, nil
	}
	if rq.params[0] != orgID || rq.params[1] != userID {
		return nil, errNotFound()
	}
	b := rq.base
	return &reply{status: http.StatusOK, body: orderedJSON{
		{"id", identityURL(b)},
		{"asserted_user", true},
		{"user_id", userID},
		{"organization_id", orgID},
		{"username", userName},
		{"nick_name", userNickname},
		{"display_name", userFirstName + " " + userLastName},
		{"email", userName},
		{"email_verified", true},
		{"first_name", userFirstName},
		{"last_name", userLastName},
		{"timezone", userTimeZone},
		{"photos", userPhotos(b)},
		{"addr_street", nil},
		{"addr_city", nil},
		{"addr_state", nil},
		{"addr_country", "US"},
		{"addr_zip", nil},
		{"mobile_phone", nil},
		{"mobile_phone_verified", false},
		{"is_lightning_login_user", false},
		{"status", orderedJSON{{"created_date", nil}, {"body", nil}}},
		{"urls", identityURLs(b)},
		{"active", true},
		{"user_type", "STANDARD"},
		{"language", userLocale},
		{"locale", userLocale},
		{"utcOffset", 0},
		{"last_modified_date", sfTime(s.started)},
		{"is_app_installed", true},
	}}, nil
}

// handleUserInfo serves GET and POST /services/oauth2/userinfo: the
// OpenID Connect claims of the token's user, in the real field order
// (salesforce-api.md §10.1).
func (s *Server) handleUserInfo(rq *request) (*reply, error) {
	if refused := s.identityToken(rq.r); refused != nil {
		return refused, nil
	}
	b := rq.base
	return &reply{status: http.StatusOK, body: orderedJSON{
		{"sub", identityURL(b)},
		{"user_id", userID},
		{"organization_id", orgID},
		{"preferred_username", userName},
		{"nickname", userNickname},
		{"name", userFirstName + " " + userLastName},
		{"email", userName},
		{"email_verified", true},
		{"given_name", userFirstName},
		{"family_name", userLastName},
		{"zoneinfo", userTimeZone},
		{"photos", userPhotos(b)},
		{"profile", b + "/" + userID},
		{"picture", b + "/profilephoto/005/F"},
		{"address", orderedJSON{{"country", "US"}}},
		{"is_salesforce_integration_user", false},
		{"urls", identityURLs(b)},
		{"active", true},
		{"user_type", "STANDARD"},
		{"language", userLocale},
		{"locale", userLocale},
		{"utcOffset", 0},
		{"updated_at", s.started.UTC().Format("2006-01-02T15:04:05Z")},
		{"is_app_installed", true},
	}}, nil
}

// identityURL is the token user's identity URL under base b: the id of
// the token answer, and userinfo's sub.
func identityURL(b string) string { return b + "/id/" + orgID + "/" + userID }

// userPhotos is the photos object both identity answers carry.
func userPhotos(b string) orderedJSON {
	return orderedJSON{
		{"picture", b + "/profilephoto/005/F"},
		{"thumbnail", b + "/profilephoto/005/T"},
	}
}

// sysObject is a standard object every org has but the emulator's object
// definitions do not (User, Organization): one read-only record, served
// by GET sobjects/{Object}/{id} and by simple queries. When the
// definitions declare an object of the same name, that one wins.
type sysObject struct {
	name   string
	id     string
	fields func(s *Server) orderedJSON // in describe order, Id first
}

var sysObjects = []sysObject{
	{name: "User", id: userID, fields: func(s *Server) orderedJSON {
		created := sfTime(s.started)
		return orderedJSON{
			{"Id", userID},
			{"Username", userName},
			{"LastName", userLastName},
			{"FirstName", userFirstName},
			{"Name", userFirstName + " " + userLastName},
			{"CompanyName", orgName},
			{"Email", userName},
			{"Alias", userAlias},
			{"CommunityNickname", userNickname},
			{"IsActive", true},
			{"TimeZoneSidKey", userTimeZone},
			{"LocaleSidKey", userLocale},
			{"EmailEncodingKey", "UTF-8"},
			{"ProfileId", profileID},
			{"UserType", "Standard"},
			{"LanguageLocaleKey", userLocale},
			{"CreatedDate", created},
			{"CreatedById", userID},
			{"LastModifiedDate", created},
			{"LastModifiedById", userID},
			{"SystemModstamp", created},
		}
	}},
	{name: "Organization", id: orgID, fields: func(s *Server) orderedJSON {
		created := sfTime(s.started)
		return orderedJSON{
			{"Id", orgID},
			{"Name", orgName},
			{"Country", "US"},
			{"LanguageLocaleKey", userLocale},
			{"DefaultLocaleSidKey", userLocale},
			{"TimeZoneSidKey", userTimeZone},
			{"InstanceName", orgInstance},
			{"IsSandbox", false},
			{"TrialExpirationDate", nil},
			{"NamespacePrefix", nil},
			{"OrganizationType", orgEdition},
			{"CreatedDate", created},
			{"CreatedById", userID},
			{"LastModifiedDate", created},
			{"LastModifiedById", userID},
			{"SystemModstamp", created},
		}
	}},
}

// sfTime formats a timestamp as the REST API does (salesforce-api.md §0).
func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+0000") }

// sysObjectNamed returns the system object called name when the org's
// definitions do not declare one, else nil.
func (s *Server) sysObjectNamed(name string) *sysObject {
	if s.org.object(name) != nil {
		return nil
	}
	for i := range sysObjects {
		if strings.EqualFold(sysObjects[i].name, name) {
			return &sysObjects[i]
		}
	}
	return nil
}

// record renders the object's record with the given fields (all when
// empty), "attributes" first as every REST record starts (salesforce-api.md §8).
func (o *sysObject) record(s *Server, version string, names []string) (orderedJSON, *apiError) {
	all := o.fields(s)
	out := orderedJSON{{"attributes", orderedJSON{
		{"type", o.name},
		{"url", "/services/data/v" + version + "/sobjects/" + o.name + "/" + o.id},
	}}}
	if len(names) == 0 {
		return append(out, all...), nil
	}
	for _, n := range names {
		f, ok := o.field(all, n)
		if !ok {
			return nil, o.noColumn(n)
		}
		out = append(out, f)
	}
	return out, nil
}

func (o *sysObject) field(all orderedJSON, name string) (kv, bool) {
	for _, f := range all {
		if strings.EqualFold(f.k, name) {
			return f, true
		}
	}
	return kv{}, false
}

func (o *sysObject) noColumn(name string) *apiError {
	return newAPIError(http.StatusBadRequest, "INVALID_FIELD",
		fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", excerpt.Of(name), o.name))
}

// getSysRecord serves GET sobjects/{User|Organization}/{id}[?fields=].
// Another ID answers 404 NOT_FOUND as for any record that does not exist.
func (s *Server) getSysRecord(rq *request, o *sysObject) (*reply, error) {
	id := rq.params[1]
	if id != o.id && id != id15(o.id) {
		return nil, errNotFound()
	}
	var names []string
	if list := rq.r.URL.Query().Get("fields"); list != "" {
		for _, n := range strings.Split(list, ",") {
			names = append(names, strings.TrimSpace(n))
		}
	}
	rec, aerr := o.record(s, rq.version, names)
	if aerr != nil {
		return nil, aerr
	}
	return &reply{status: http.StatusOK, body: rec}, nil
}

// sysQuery answers a query on a system object. It understands
// SELECT fields FROM Object [WHERE Field = 'value'] [LIMIT n]; ok is false
// when the query is not on a system object, and the caller goes on with
// the org's own query engine.
func (s *Server) sysQuery(rq *request, q string) (rep *reply, ok bool, aerr *apiError) {
	toks, aerr := lexSOQL(q)
	if aerr != nil {
		return nil, false, nil
	}
	l := &soqlLexer{toks: toks}
	if !l.is("SELECT") {
		return nil, false, nil
	}
	l.next()
	var names []string
	for {
		n := l.next()
		if n == "" || strings.EqualFold(n, "FROM") {
			return nil, false, nil
		}
		names = append(names, n)
		if l.peek() != "," {
			break
		}
		l.next()
	}
	if !l.is("FROM") {
		return nil, false, nil
	}
	l.next()
	o := s.sysObjectNamed(l.next())
	if o == nil {
		return nil, false, nil
	}
	all := o.fields(s)
	match := true
	if l.is("WHERE") {
		l.next()
		name, op, lit := l.next(), l.next(), l.next()
		f, found := o.field(all, name)
		if !found {
			return nil, true, o.noColumn(name)
		}
		val, isLit := strings.CutPrefix(lit, "'")
		if op != "=" || !isLit {
			return nil, true, errMalformed("the emulator's " + o.name + " object supports only WHERE Field = 'value'")
		}
		match = fmt.Sprint(f.v) == val
	}
	limit := -1
	if l.is("LIMIT") {
		l.next()
		n, err := strconv.Atoi(l.next())
		if err != nil || n < 0 {
			return nil, true, errMalformed("LIMIT needs a non-negative whole number")
		}
		limit = n
	}
	if l.peek() != "" {
		return nil, true, errMalformed("unexpected token: '" + excerpt.Of(l.peek()) + "'; the emulator's " + o.name +
			" object supports only SELECT fields FROM " + o.name + " [WHERE Field = 'value'] [LIMIT n]")
	}
	records := []any{}
	if match && limit != 0 {
		rec, aerr := o.record(s, rq.version, names)
		if aerr != nil {
			return nil, true, aerr
		}
		records = append(records, rec)
	}
	return &reply{status: http.StatusOK, body: orderedJSON{
		{"totalSize", len(records)}, {"done", true}, {"records", records},
	}}, true, nil
}
