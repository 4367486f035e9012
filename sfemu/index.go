package sfemu

import (
	"hash/maphash"
	"slices"
	"strings"
	"unicode/utf8"
)

// keyIndex finds a table's records by the value of one unique or External
// ID field. It is an open-addressing hash table with linear probing over
// (record seq, 32-bit hash) pairs, kept at most half full. Keys are not
// stored: a candidate's key is read back from its record, and the hash
// keeps those reads to real matches. So an index costs 8-16 bytes per
// record, where a Go map cost about 70 plus a copy of every key. Records
// with an empty value are not indexed. Guarded by orgStore.mu.
type keyIndex struct {
	seed  maphash.Seed
	slots []keySlot // power-of-two length (or nil); seq 0 marks an empty slot
	n     int       // entries
}

type keySlot struct{ seq, hash uint32 }

func newKeyIndex() keyIndex { return keyIndex{seed: maphash.MakeSeed()} }

func (ix *keyIndex) hashOf(folded []byte) uint32 { return keyHash(ix.seed, folded) }

// keyHash is the index hash of a folded key. A job's processor computes
// it for its upsert keys before it takes the store lock (the seed never
// changes once the index exists).
func keyHash(seed maphash.Seed, folded []byte) uint32 {
	h := maphash.Bytes(seed, folded)
	return uint32(h) ^ uint32(h>>32)
}

// warm reads the slot where a probe for hash h starts and returns its
// seq. Reading the slots of a whole chunk of keys first, before any
// lookup, lets the processor fetch them from memory side by side instead
// of one cache miss after the other.
func (ix *keyIndex) warm(h uint32) uint32 {
	if len(ix.slots) == 0 {
		return 0
	}
	return ix.slots[h&uint32(len(ix.slots)-1)].seq
}

// reserve makes room for n entries without growing again.
func (ix *keyIndex) reserve(n int) {
	if 2*n <= len(ix.slots) {
		return
	}
	size := max(16, len(ix.slots))
	for 2*n > size {
		size *= 2
	}
	old := ix.slots
	ix.slots = make([]keySlot, size)
	for _, sl := range old {
		if sl.seq != 0 {
			ix.put(sl)
		}
	}
}

func (ix *keyIndex) put(sl keySlot) {
	mask := uint32(len(ix.slots) - 1)
	for i := sl.hash & mask; ; i = (i + 1) & mask {
		if ix.slots[i].seq == 0 {
			ix.slots[i] = sl
			return
		}
	}
}

// keyProbe walks the records whose indexed value equals one key.
type keyProbe struct {
	t       *table
	f       *field
	ix      *keyIndex
	key     []byte // folded
	h, i, m uint32
}

// probe starts a walk over the records whose field f equals the folded key.
func (t *table) probe(f *field, key []byte) keyProbe {
	ix := &t.idx[f.index]
	if ix.n == 0 {
		return keyProbe{t: t, f: f, ix: ix, key: key}
	}
	return t.probeHashed(f, key, ix.hashOf(key))
}

// probeHashed is probe for a key whose hash is known.
func (t *table) probeHashed(f *field, key []byte, h uint32) keyProbe {
	ix := &t.idx[f.index]
	p := keyProbe{t: t, f: f, ix: ix, key: key}
	if ix.n > 0 {
		p.h = h
		p.m = uint32(len(ix.slots) - 1)
		p.i = p.h & p.m
	}
	return p
}

// next returns the next matching record, or false when there is none.
func (p *keyProbe) next() (uint32, bool) {
	if p.ix.n == 0 {
		return 0, false
	}
	for {
		sl := p.ix.slots[p.i]
		if sl.seq == 0 {
			return 0, false
		}
		p.i = (p.i + 1) & p.m
		if sl.hash == p.h && foldedEqual(valueAt(p.t.rec(sl.seq).vals, p.f.slot), p.key, p.f.caseSens) {
			return sl.seq, true
		}
	}
}

// lookup returns how many live records have field f equal to v and the
// oldest of them. buf is scratch space for the folded key.
func (t *table) lookup(f *field, v []byte, buf *[]byte) (first uint32, n int) {
	*buf = foldKey((*buf)[:0], v, f.caseSens)
	return countMatches(t.probe(f, *buf))
}

// lookupHashed is lookup for a value whose folded key hashes to h.
func (t *table) lookupHashed(f *field, v []byte, h uint32, buf *[]byte) (first uint32, n int) {
	*buf = foldKey((*buf)[:0], v, f.caseSens)
	return countMatches(t.probeHashed(f, *buf, h))
}

// countMatches walks a probe to its end: how many records match, and the
// oldest.
func countMatches(p keyProbe) (first uint32, n int) {
	for seq, ok := p.next(); ok; seq, ok = p.next() {
		if n == 0 || seq < first {
			first = seq
		}
		n++
	}
	return first, n
}

// lookupAll returns every live record with field f equal to v, oldest first.
func (t *table) lookupAll(f *field, v []byte) []uint32 {
	p := t.probe(f, foldKey(nil, v, f.caseSens))
	var out []uint32
	for seq, ok := p.next(); ok; seq, ok = p.next() {
		out = append(out, seq)
	}
	slices.Sort(out)
	return out
}

// indexAdd indexes record seq under its value v of field f.
func (t *table) indexAdd(f *field, v string, seq uint32, buf *[]byte) {
	*buf = foldKey((*buf)[:0], v, f.caseSens)
	t.indexAddHashed(f, seq, t.idx[f.index].hashOf(*buf))
}

// indexAddHashed indexes record seq under a value whose folded key
// hashes to h.
func (t *table) indexAddHashed(f *field, seq uint32, h uint32) {
	ix := &t.idx[f.index]
	ix.reserve(ix.n + 1)
	ix.put(keySlot{seq: seq, hash: h})
	ix.n++
}

// indexRemove removes record seq, indexed under value v of field f.
func (t *table) indexRemove(f *field, v string, seq uint32, buf *[]byte) {
	ix := &t.idx[f.index]
	if ix.n == 0 {
		return
	}
	*buf = foldKey((*buf)[:0], v, f.caseSens)
	h := ix.hashOf(*buf)
	mask := uint32(len(ix.slots) - 1)
	i := h & mask
	for ; ix.slots[i].seq != seq; i = (i + 1) & mask {
		if ix.slots[i].seq == 0 {
			return // not indexed
		}
	}
	// Backward-shift deletion: move later entries of the run into the hole
	// when their home slot is not after it, so that no probe stops early.
	for j := i; ; {
		j = (j + 1) & mask
		sl := ix.slots[j]
		if sl.seq == 0 {
			break
		}
		if home := sl.hash & mask; (j-home)&mask >= (j-i)&mask {
			ix.slots[i] = sl
			i = j
		}
	}
	ix.slots[i] = keySlot{}
	ix.n--
}

// foldedEqual reports whether a stored value, folded as foldKey does,
// equals key, without allocating for ASCII values.
func foldedEqual(stored string, key []byte, caseSensitive bool) bool {
	if caseSensitive {
		return stored == string(key)
	}
	if len(stored) != len(key) {
		// Lower-casing keeps the length of ASCII text; others are compared below.
		for i := 0; i < len(stored); i++ {
			if stored[i] >= utf8.RuneSelf {
				return strings.ToLower(stored) == string(key)
			}
		}
		return false
	}
	for i := 0; i < len(stored); i++ {
		c := stored[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(stored) == string(key)
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}
