package extract

import (
	"io"
	"sync"
)

// A source is read a block of rows ahead of the extraction, on a goroutine
// of its own, so that the engine's work (SQLite's virtual machine, or
// waiting on a server's network answers) overlaps formatting and writing
// the rows. The extraction sees the same rows in the same order, and an
// engine error after them, as it would reading the source itself.
//
// An engine's text is only valid until its next row (rowStream), so text
// and bytes are copied into the block that holds the row.

const (
	prefetchRows   = 256     // rows per block at most
	prefetchBytes  = 1 << 20 // text per block: a block ends at the row that passes this
	prefetchBlocks = 3       // blocks in all: the one read, the one filled, one waiting
)

type rowBlock struct {
	vals  []value // prefetchRows rows of ncol values
	n     int     // rows filled
	arena []byte  // the rows' text
	err   error   // after the rows: io.EOF at the end of the source, or the engine's error
}

// prefetcher is a rowStream that reads src on its own goroutine.
type prefetcher struct {
	src  rowStream
	ncol int
	full chan *rowBlock // filled blocks, in order
	free chan *rowBlock // blocks the consumer is done with
	stop chan struct{}
	wg   sync.WaitGroup

	// The consumer's side.
	cur  *rowBlock
	pos  int
	done bool
	err  error
}

// prefetch starts reading src, whose rows have ncol values, ahead of its
// consumer. close stops the reading goroutine before closing src.
func prefetch(src rowStream, ncol int) *prefetcher {
	p := &prefetcher{src: src, ncol: ncol,
		full: make(chan *rowBlock, prefetchBlocks), free: make(chan *rowBlock, prefetchBlocks), stop: make(chan struct{})}
	for range prefetchBlocks {
		// The arena grows to what the rows need (up to a little over
		// prefetchBytes) and keeps that size.
		p.free <- &rowBlock{vals: make([]value, prefetchRows*ncol), arena: make([]byte, 0, 64<<10)}
	}
	p.wg.Add(1)
	go p.read()
	return p
}

func (p *prefetcher) read() {
	defer p.wg.Done()
	for {
		var b *rowBlock
		select {
		case b = <-p.free:
		case <-p.stop:
			return
		}
		b.n, b.err, b.arena = 0, nil, b.arena[:0]
		for b.n < prefetchRows && len(b.arena) < prefetchBytes {
			row := b.vals[b.n*p.ncol : (b.n+1)*p.ncol]
			ok, err := p.src.next(row)
			if err != nil || !ok {
				b.err = err
				if err == nil {
					b.err = io.EOF
				}
				break
			}
			for i := range row {
				if v := &row[i]; v.kind == vText || v.kind == vBinary {
					// A reallocation leaves the earlier rows' text on the
					// old array, which is not written again.
					start := len(b.arena)
					b.arena = append(b.arena, v.b...)
					v.b = b.arena[start:len(b.arena):len(b.arena)]
				}
			}
			b.n++
		}
		select {
		case p.full <- b:
		case <-p.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// next copies the next row into dst. The text it points to stays valid
// until the following call.
func (p *prefetcher) next(dst []value) (bool, error) {
	for p.cur == nil || p.pos == p.cur.n {
		if p.done {
			return false, p.err
		}
		if p.cur != nil {
			if p.cur.err != nil {
				p.done = true
				if p.cur.err != io.EOF {
					p.err = p.cur.err
				}
				continue
			}
			p.free <- p.cur // never blocks: there are only prefetchBlocks blocks
		}
		p.cur, p.pos = <-p.full, 0
	}
	copy(dst, p.cur.vals[p.pos*p.ncol:(p.pos+1)*p.ncol])
	p.pos++
	return true, nil
}

// close stops the reading goroutine (after the row it may be reading)
// and closes the source.
func (p *prefetcher) close() error {
	close(p.stop)
	p.wg.Wait()
	return p.src.close()
}
