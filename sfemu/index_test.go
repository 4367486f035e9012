package sfemu

import (
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestKeyIndexAgainstMap drives a table's key index with random inserts,
// value changes and deletes, on a case-insensitive non-unique External ID
// field (so keys repeat), and checks every lookup against a plain map.
func TestKeyIndexAgainstMap(t *testing.T) {
	g, err := compileOrg([]ObjectDef{{Name: "Thing__c", Fields: []FieldDef{
		{Name: "Key__c", Type: "string", Length: 80, ExternalID: true},
		{Name: "Other__c", Type: "string", Length: 80},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ob := g.objects[0]
	f := ob.byName["key__c"]
	tb := newTable(ob)
	rng := mrand.New(mrand.NewPCG(1, 2))
	keys := []string{"a", "A", "b", "Straße", "STRASSE", "é", "É", "k-1", "K-1", "long-key-0123456789"}
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("key-%d", i))
	}
	want := map[string][]uint32{} // folded key -> live seqs
	value := map[uint32]string{}  // live seq -> value
	var sc applyScratch
	check := func(step int) {
		t.Helper()
		for _, k := range keys {
			folded := strings.ToLower(k)
			w := slices.Clone(want[folded])
			slices.Sort(w)
			got := tb.lookupAll(f, []byte(k))
			if !slices.Equal(got, w) {
				t.Fatalf("step %d: lookupAll(%q) = %v, want %v", step, k, got, w)
			}
			first, n := tb.lookup(f, []byte(k), &sc.key)
			if n != len(w) || (n > 0 && first != w[0]) {
				t.Fatalf("step %d: lookup(%q) = %d, %d; want %v", step, k, first, n, w)
			}
		}
		if tb.idx[0].n != len(value) {
			t.Fatalf("step %d: index holds %d entries, want %d", step, tb.idx[0].n, len(value))
		}
	}
	remove := func(seq uint32) {
		folded := strings.ToLower(value[seq])
		want[folded] = slices.DeleteFunc(want[folded], func(s uint32) bool { return s == seq })
		delete(value, seq)
	}
	for step := range 5000 {
		k := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(10); {
		case op < 5 || len(value) == 0: // insert
			ch := make([]change, len(ob.data))
			ch[f.slot] = change{st: stSet, v: []byte(k)}
			seq, e := tb.insertLocked(ch, 0, &sc)
			if e != nil {
				t.Fatal(e)
			}
			want[strings.ToLower(k)] = append(want[strings.ToLower(k)], seq)
			value[seq] = k
		case op < 8: // change the value of a live record
			seq := liveSeq(rng, value)
			ch := make([]change, len(ob.data))
			ch[f.slot] = change{st: stSet, v: []byte(k)}
			if e := tb.updateLocked(seq, ch, 0, &sc); e != nil {
				t.Fatal(e)
			}
			remove(seq)
			want[strings.ToLower(k)] = append(want[strings.ToLower(k)], seq)
			value[seq] = k
		default: // delete
			seq := liveSeq(rng, value)
			tb.deleteLocked(seq, 0, &sc)
			remove(seq)
		}
		if step%97 == 0 {
			check(step)
		}
	}
	check(5000)
}

func liveSeq(rng *mrand.Rand, value map[uint32]string) uint32 {
	seqs := make([]uint32, 0, len(value))
	for s := range value {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	return seqs[rng.IntN(len(seqs))]
}

// TestFoldedEqual compares foldedEqual with folding both sides.
func TestFoldedEqual(t *testing.T) {
	for _, a := range []string{"", "a", "A", "ab", "Straße", "STRASSE", "İ", "i", "é", "É", "x\xffy"} {
		for _, b := range []string{"", "a", "A", "ab", "Straße", "STRASSE", "İ", "i", "é", "É", "x\xffy"} {
			key := foldKey(nil, b, false)
			want := string(foldKey(nil, a, false)) == string(key)
			if got := foldedEqual(a, key, false); got != want {
				t.Errorf("foldedEqual(%q, fold(%q)) = %v, want %v", a, b, got, want)
			}
			if got := foldedEqual(a, []byte(b), true); got != (a == b) {
				t.Errorf("case-sensitive foldedEqual(%q, %q) = %v", a, b, got)
			}
		}
	}
}
