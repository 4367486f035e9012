package sfemu

import (
	"net/http"
	"net/url"
	"strings"
)

// queryParam returns the first value of a URL query parameter. Unlike
// url.Values, it splits the query at '&' only: Go drops every pair that
// holds a ';', but Salesforce reads ';' as part of the value, and a SOQL
// string literal may hold one. A value that is not validly %-encoded is
// a MALFORMED_QUERY [I].
func queryParam(r *http.Request, name string) (string, *apiError) {
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != name {
			continue
		}
		v, err := url.QueryUnescape(v)
		if err != nil {
			return "", errMalformed("the " + name + " parameter is not validly URL-encoded (" + err.Error() + ")")
		}
		return v, nil
	}
	return "", nil
}
