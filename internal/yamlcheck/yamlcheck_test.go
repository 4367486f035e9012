package yamlcheck

import (
	"strings"
	"testing"
)

func TestOneDocument(t *testing.T) {
	for doc, want := range map[string]string{
		"a: 1\n":                  "",
		"":                        "",
		"a: 1\n---\n":             "",
		"---\na: 1\n...\n":        "",
		"a: 1\n---\n# note\n":     "",
		"a: 1\n---\nb: 2\n":       "second starts near line 3",
		"a: 1\n---\n- x\n---\n":   "second starts near line 3",
		"a: 1\n---\nb: [\n":       "not valid YAML",
		"a: [\n---\nb: 2\n":       "", // the caller reports the first document's error
		"a: 1\n\n\n---\n\nb: 2\n": "near line 6",
	} {
		err := OneDocument([]byte(doc))
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("OneDocument(%q) = %v, want %q", doc, err, want)
		}
	}
}
