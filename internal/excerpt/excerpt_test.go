package excerpt

import (
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	if got := Of("short"); got != "short" {
		t.Errorf("Of(short) = %q", got)
	}
	long := strings.Repeat("é", 10<<20) // 20 MiB, two bytes a character
	got := Of(long)
	if len(got) > Limit+40 {
		t.Errorf("Of(20 MiB) is %d bytes long", len(got))
	}
	if !strings.HasSuffix(got, "… (20971520 bytes)") || !strings.HasPrefix(got, "éé") {
		t.Errorf("Of(20 MiB) = %q", got)
	}
	if strings.ContainsRune(got, '\uFFFD') || !strings.HasPrefix(got, strings.Repeat("é", Limit/2)+"…") {
		t.Errorf("Of cut a character or the wrong length: %q", got)
	}
	q := Quote(strings.Repeat("a\n", 1000))
	if !strings.HasPrefix(q, `"a\na\n`) || !strings.HasSuffix(q, `"… (2000 bytes)`) || len(q) > 2*Limit+30 {
		t.Errorf("Quote = %q", q)
	}
	if Quote("x") != `"x"` {
		t.Errorf("Quote(x) = %s", Quote("x"))
	}
}
