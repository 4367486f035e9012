package sfemu_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// caseSafe checks an 18-character ID: prefix, and a suffix that encodes
// the upper-case letters of the first 15 characters (salesforce-api.md §0),
// computed here independently of the emulator.
func caseSafe(t *testing.T, what, id, prefix string) {
	t.Helper()
	if len(id) != 18 || !strings.HasPrefix(id, prefix) {
		t.Fatalf("%s = %q, want 18 characters starting %s", what, id, prefix)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	var want strings.Builder
	for chunk := range 3 {
		n := 0
		for i := range 5 {
			if c := id[chunk*5+i]; c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		want.WriteByte(alphabet[n])
	}
	if id[15:] != want.String() {
		t.Errorf("%s = %q: suffix %q, want %q", what, id, id[15:], want.String())
	}
}

// tokenIdentity returns the org and user IDs of the token answer's id URL.
func tokenIdentity(t *testing.T, c *tc) (idURL, org, user string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	r := c.do("POST", "/services/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), false)
	var tok struct {
		ID string `json:"id"`
	}
	r.json(&tok)
	parts := strings.Split(tok.ID, "/")
	if len(parts) < 3 {
		t.Fatalf("token id %q", tok.ID)
	}
	return tok.ID, parts[len(parts)-2], parts[len(parts)-1]
}

func TestUserInfo(t *testing.T) {
	c := newTC(t)
	idURL, org, user := tokenIdentity(t, c)
	for _, method := range []string{"GET", "POST"} {
		r := c.do(method, "/services/oauth2/userinfo", "", "", true)
		if r.status != 200 {
			t.Fatalf("%s userinfo: %d %s", method, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		// The claims come in the order Salesforce sends them.
		order := []string{"sub", "user_id", "organization_id", "preferred_username", "nickname", "name", "email",
			"email_verified", "given_name", "family_name", "zoneinfo", "photos", "profile", "picture", "address",
			"is_salesforce_integration_user", "urls", "active", "user_type", "language", "locale", "utcOffset",
			"updated_at", "is_app_installed"}
		// Each claim is looked for after the one before it ("picture"
		// is also a key inside "photos").
		pos := 0
		for _, k := range order {
			i := strings.Index(r.body[pos:], `"`+k+`":`)
			if i < 0 {
				t.Fatalf("claim %s missing or out of order in %s", k, r.body)
			}
			pos += i + 1
		}
		var ui struct {
			Sub       string            `json:"sub"`
			UserID    string            `json:"user_id"`
			OrgID     string            `json:"organization_id"`
			Username  string            `json:"preferred_username"`
			Active    bool              `json:"active"`
			UserType  string            `json:"user_type"`
			UTCOffset *int              `json:"utcOffset"`
			URLs      map[string]string `json:"urls"`
		}
		r.json(&ui)
		if ui.Sub != idURL || ui.UserID != user || ui.OrgID != org {
			t.Errorf("sub/user_id/organization_id = %q/%q/%q, want the token's %q/%q/%q", ui.Sub, ui.UserID, ui.OrgID, idURL, user, org)
		}
		caseSafe(t, "user_id", ui.UserID, "005")
		caseSafe(t, "organization_id", ui.OrgID, "00D")
		if !strings.Contains(ui.Username, "@") || !ui.Active || ui.UserType != "STANDARD" || ui.UTCOffset == nil {
			t.Errorf("preferred_username/active/user_type/utcOffset = %q/%v/%q/%v", ui.Username, ui.Active, ui.UserType, ui.UTCOffset)
		}
		if ui.URLs["rest"] != c.srv.URL+"/services/data/v{version}/" || ui.URLs["query"] != c.srv.URL+"/services/data/v{version}/query/" {
			t.Errorf("urls = %v", ui.URLs)
		}
	}
	// The token may also come as a parameter; it is not a REST call, so
	// it carries no Sforce-Limit-Info.
	r := c.do("GET", "/services/oauth2/userinfo?access_token="+url.QueryEscape(c.token), "", "", false)
	if r.status != 200 || r.header.Get("Sforce-Limit-Info") != "" {
		t.Errorf("access_token parameter: %d %q %s", r.status, r.header.Get("Sforce-Limit-Info"), r.body)
	}
}

// TestUserInfoRefusals: the identity service answers 403 and one word of
// plain text, not the REST API's 401 envelope.
func TestUserInfoRefusals(t *testing.T) {
	c := newTC(t)
	send := func(auth string) resp {
		req, err := http.NewRequestWithContext(t.Context(), "GET", c.srv.URL+"/services/oauth2/userinfo", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return c.send(req)
	}
	check := func(name string, r resp, want string) {
		t.Helper()
		if r.status != 403 || r.body != want || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %q %q, want 403 %q text/plain", name, r.status, r.header.Get("Content-Type"), r.body, want)
		}
	}
	check("no token", send(""), "Missing_OAuth_Token")
	check("unknown token", send("Bearer 00D000000000000!AQnotissued"), "Bad_OAuth_Token")
	check("not a bearer", send("Basic Zm9vOmJhcg=="), "Bad_OAuth_Token")
	good := send("Bearer " + c.token)
	if good.status != 200 {
		t.Fatalf("good token: %d %s", good.status, good.body)
	}
	c.emu.ExpireTokens()
	check("expired token", send("Bearer "+c.token), "Bad_OAuth_Token")
}

func TestRunAsUserRecord(t *testing.T) {
	c := newTC(t)
	_, org, user := tokenIdentity(t, c)
	var ui struct {
		Username string `json:"preferred_username"`
	}
	c.do("GET", "/services/oauth2/userinfo", "", "", true).json(&ui)

	// The Salesforce CLI reads the username here, at v51.0.
	path := "/services/data/v51.0/sobjects/User/" + user
	r := c.do("GET", path, "", "", true)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if !strings.HasPrefix(r.body, `{"attributes":{"type":"User","url":"/services/data/v51.0/sobjects/User/`+user+`"},"Id":"`+user+`"`) {
		t.Errorf("record does not start with attributes and Id: %s", r.body)
	}
	var rec map[string]any
	r.json(&rec)
	if rec["Username"] != ui.Username || rec["IsActive"] != true {
		t.Errorf("Username/IsActive = %v/%v, want %q/true", rec["Username"], rec["IsActive"], ui.Username)
	}
	caseSafe(t, "ProfileId", rec["ProfileId"].(string), "00e")
	if r.header.Get("Sforce-Limit-Info") == "" {
		t.Error("a REST call without Sforce-Limit-Info")
	}

	// ?fields= picks fields in the order asked; the 15-character ID works too.
	r = c.get("/sobjects/user/" + user[:15] + "?fields=Email,Username")
	if r.status != 200 {
		t.Fatalf("fields: %d %s", r.status, r.body)
	}
	if want := `{"attributes":{"type":"User","url":"/services/data/v66.0/sobjects/User/` + user + `"},"Email":"` + ui.Username + `","Username":"` + ui.Username + `"}`; r.body != want {
		t.Errorf("fields:\n got %s\nwant %s", r.body, want)
	}
	if r := c.get("/sobjects/User/" + user + "?fields=Nope__c"); r.status != 400 || r.errorCode() != "INVALID_FIELD" || !strings.Contains(r.errorMessage(), "Nope__c") {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
	// Another user, or the org's ID, is a record that does not exist.
	for _, id := range []string{"0055g0000000XXXAAA", org} {
		if r := c.get("/sobjects/User/" + id); r.status != 404 || r.errorCode() != "NOT_FOUND" {
			t.Errorf("User %s: %d %s", id, r.status, r.body)
		}
	}
	// A data call with a bad token gets the REST API's 401 envelope.
	c.token = "00D000000000000!AQnotissued"
	if r := c.do("GET", path, "", "", true); r.status != 401 || r.errorCode() != "INVALID_SESSION_ID" {
		t.Errorf("bad token: %d %s", r.status, r.body)
	}
}

func TestOrganizationAndUserQueries(t *testing.T) {
	c := newTC(t)
	_, org, user := tokenIdentity(t, c)
	// The query the Salesforce CLI sends after a login.
	q := "SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization"
	r := c.get("/query?q=" + url.QueryEscape(q))
	if r.status != 200 {
		t.Fatalf("%s: %d %s", q, r.status, r.body)
	}
	want := `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Organization","url":"/services/data/v66.0/sobjects/Organization/` + org +
		`"},"Name":"sfemu","InstanceName":"SFEMU1","IsSandbox":false,"TrialExpirationDate":null,"NamespacePrefix":null,"OrganizationType":"Enterprise Edition"}]}`
	if r.body != want {
		t.Errorf("Organization:\n got %s\nwant %s", r.body, want)
	}
	count := func(q string) int {
		t.Helper()
		r := c.get("/query?q=" + url.QueryEscape(q))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		var page struct {
			TotalSize int               `json:"totalSize"`
			Records   []json.RawMessage `json:"records"`
		}
		r.json(&page)
		if page.TotalSize != len(page.Records) {
			t.Errorf("%s: totalSize %d, %d records", q, page.TotalSize, len(page.Records))
		}
		return page.TotalSize
	}
	for q, n := range map[string]int{
		"SELECT Id FROM Organization WHERE Id = '" + org + "'":             1,
		"select id, username from user where Id = '" + user + "' limit 1":  1,
		"SELECT Id FROM User WHERE Username = 'integration@sfemu.example'": 1,
		"SELECT Id FROM User WHERE Username = 'someone.else@example.com'":  0,
		"SELECT Id FROM Organization LIMIT 0":                              0,
	} {
		if got := count(q); got != n {
			t.Errorf("%s: %d records, want %d", q, got, n)
		}
	}
	for q, code := range map[string]string{
		"SELECT Nope FROM Organization":                "INVALID_FIELD",
		"SELECT Id FROM User WHERE Nope = 'x'":         "INVALID_FIELD",
		"SELECT Id FROM User WHERE Username LIKE 'x%'": "MALFORMED_QUERY",
		"SELECT Id FROM Organization ORDER BY Name":    "MALFORMED_QUERY",
		"SELECT Id FROM Organization LIMIT x":          "MALFORMED_QUERY",
		// Not a Dev Hub: the CLI probes for one with this query.
		"SELECT Id FROM ScratchOrgInfo limit 1": "INVALID_TYPE",
	} {
		if r := c.get("/query?q=" + url.QueryEscape(q)); r.status != 400 || r.errorCode() != code {
			t.Errorf("%s: %d %s, want 400 %s", q, r.status, r.body, code)
		}
	}
}

// TestDefinedUserObjectWins: an org whose definitions declare User serves
// its own table, not the built-in run-as user.
func TestDefinedUserObjectWins(t *testing.T) {
	defs := append(sfemu.DefaultObjects(), sfemu.ObjectDef{Name: "User", Fields: []sfemu.FieldDef{
		{Name: "Username", Type: "string", Length: 80, ExternalID: true, Unique: true},
	}})
	c := newTC(t, sfemu.WithObjects(defs))
	_, _, user := tokenIdentity(t, c)
	if r := c.get("/sobjects/User/" + user); r.status != 404 {
		t.Errorf("built-in user served from a declared User object: %d %s", r.status, r.body)
	}
	if n := len(c.query("SELECT Id FROM User")); n != 0 {
		t.Errorf("declared User table has %d records, want 0", n)
	}
}

// TestIdentityURL: the token answer's id URL tells the same user and org
// as UserInfo, under the identity service's names, and refuses tokens the
// same way.
func TestIdentityURL(t *testing.T) {
	c := newTC(t)
	idURL, org, user := tokenIdentity(t, c)
	path := strings.TrimPrefix(idURL, c.srv.URL)
	r := c.do("GET", path, "", "", true)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	pos := 0
	for _, k := range []string{"id", "asserted_user", "user_id", "organization_id", "username", "nick_name", "display_name",
		"email", "email_verified", "first_name", "last_name", "timezone", "photos", "addr_street", "addr_country",
		"mobile_phone", "is_lightning_login_user", "status", "urls", "active", "user_type", "language", "locale",
		"utcOffset", "last_modified_date", "is_app_installed"} {
		i := strings.Index(r.body[pos:], `"`+k+`":`)
		if i < 0 {
			t.Fatalf("field %s missing or out of order in %s", k, r.body)
		}
		pos += i + 1
	}
	var id struct {
		ID       string            `json:"id"`
		UserID   string            `json:"user_id"`
		OrgID    string            `json:"organization_id"`
		Username string            `json:"username"`
		URLs     map[string]string `json:"urls"`
	}
	r.json(&id)
	var ui struct {
		Username string `json:"preferred_username"`
	}
	c.do("GET", "/services/oauth2/userinfo", "", "", true).json(&ui)
	if id.ID != idURL || id.UserID != user || id.OrgID != org || id.Username != ui.Username || id.URLs["rest"] == "" {
		t.Errorf("identity %+v, want id %s, user %s, org %s, username %s", id, idURL, user, org, ui.Username)
	}
	if r := c.do("GET", "/id/"+org+"/0055g0000000XXXAAA", "", "", true); r.status != 404 {
		t.Errorf("another user's identity: %d %s", r.status, r.body)
	}
	c.token = "00D000000000000!AQnotissued"
	if r := c.do("GET", path, "", "", true); r.status != 403 || r.body != "Bad_OAuth_Token" {
		t.Errorf("bad token: %d %s", r.status, r.body)
	}
}
