package extract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
)

// batchWriter writes formatted CSV rows into rolling batch files
// <name>_<NNNNN>.csv. A file is written as <file>.tmp, then flushed, synced,
// closed and renamed, so a file with the final name is always complete; the
// directory is synced after the rename so the name survives a crash too.
// Files roll over after maxRows rows, or before a row that would take the
// file over maxBytes.
type batchWriter struct {
	dir, name string
	header    []byte // "Field1,Field2\n"
	maxRows   int64
	maxBytes  int64
	next      int // index of the next file
	onBatch   func(context.Context, Batch) error

	cur     *batchFile
	batches []Batch
}

type batchFile struct {
	index    int
	path     string
	f        *os.File
	buf      []byte
	h        hash.Hash
	rows     int64
	bytes    int64
	firstRow int64
}

// writeBufSize is the write buffer of a batch file: large enough that
// write(2) calls are a small share of the time, small enough to keep memory
// flat.
const writeBufSize = 1 << 20

// batchPath is where batch file index of table name goes.
func batchPath(dir, name string, index int) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%05d.csv", name, index))
}

// write adds one row (ending in '\n') to the open file, opening one when
// needed; the caller has made room with fits/finish. rowNum is the row's
// 0-based position in the ordered query, and key returns its order_by values
// (only called when the row is the last of its file).
func (w *batchWriter) write(ctx context.Context, row []byte, rowNum int64, key func() []string) error {
	if w.cur == nil {
		if err := w.open(rowNum); err != nil {
			return err
		}
		if w.cur.bytes+int64(len(row)) > w.maxBytes {
			return fmt.Errorf("row of %d bytes does not fit in a batch file of at most %d bytes", len(row), w.maxBytes)
		}
	}
	c := w.cur
	if len(c.buf)+len(row) > cap(c.buf) {
		if err := c.flush(); err != nil {
			return fmt.Errorf("write %s: %w", c.path+".tmp", err)
		}
	}
	if len(row) > cap(c.buf) {
		c.h.Write(row)
		if _, err := c.f.Write(row); err != nil {
			return fmt.Errorf("write %s: %w", c.path+".tmp", err)
		}
	} else {
		c.buf = append(c.buf, row...)
	}
	c.rows++
	c.bytes += int64(len(row))
	if c.rows >= w.maxRows {
		return w.finish(ctx, key())
	}
	return nil
}

// fits reports whether a row of n bytes still fits in the open file; when it
// does not, the caller finishes the file (with the previous row's key) first.
func (w *batchWriter) fits(n int) bool {
	return w.cur == nil || w.cur.bytes+int64(n) <= w.maxBytes
}

func (w *batchWriter) open(firstRow int64) error {
	index := w.next
	path := batchPath(w.dir, w.name, index)
	f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create batch file: %w", err)
	}
	c := &batchFile{index: index, path: path, f: f, buf: make([]byte, 0, writeBufSize), h: sha256.New(), firstRow: firstRow}
	c.buf = append(c.buf, w.header...)
	c.bytes = int64(len(w.header))
	w.cur = c
	w.next++
	return nil
}

func (c *batchFile) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.h.Write(c.buf)
	_, err := c.f.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// finish completes the open file: flush, fsync, close, rename to the final
// name, sync the directory, then report it through onBatch.
func (w *batchWriter) finish(ctx context.Context, lastKey []string) error {
	c := w.cur
	if c == nil {
		return nil
	}
	w.cur = nil
	tmp := c.path + ".tmp"
	err := c.flush()
	if err == nil {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.path)
	}
	if err == nil {
		err = syncDir(w.dir)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort: the error below is what matters
		return fmt.Errorf("finish batch file %s: %w", c.path, err)
	}
	b := Batch{
		Index:    c.index,
		Path:     c.path,
		Rows:     c.rows,
		Bytes:    c.bytes,
		SHA256:   hex.EncodeToString(c.h.Sum(nil)),
		FirstRow: c.firstRow,
		LastKey:  lastKey,
	}
	w.batches = append(w.batches, b)
	if w.onBatch != nil {
		if err := w.onBatch(ctx, b); err != nil {
			return fmt.Errorf("OnBatch for %s: %w", b.Path, err)
		}
	}
	// Stop between files as soon as the context ends (OnBatch may have
	// waited for a long time).
	return ctx.Err()
}

// abort removes the unfinished file, if any.
func (w *batchWriter) abort() {
	if c := w.cur; c != nil {
		w.cur = nil
		_ = c.f.Close()                // the file is being thrown away
		_ = os.Remove(c.path + ".tmp") // best effort; a leftover .tmp never looks finished
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
