package extract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// batchWriter writes formatted CSV rows into rolling batch files
// <name>_<NNNNN>.csv. Files roll over after maxRows rows, or before a row
// that would take a file over maxBytes.
//
// The work is split over two goroutines: the extracting goroutine formats
// rows into 1 MiB buffers and decides where files end (this type), and a
// writer goroutine (fileWriter) hashes and writes the buffers, then
// finishes each file: flush, fsync, close, rename from <file>.tmp to its
// final name, fsync the directory, and call OnBatch. A file with its final
// name is therefore always complete, and reading the source overlaps with
// writing, hashing and syncing (bench/extract/README.md: fsync waits alone
// were ~15 % of a 1 M-row run). A bounded set of buffers keeps memory flat:
// when the writer or OnBatch is slow, the extraction waits.
type batchWriter struct {
	dir, name string
	header    []byte // "Field1,Field2\n"
	maxRows   int64  // source rows per batch: written plus rejected
	maxBytes  int64
	next      int // index of the next file
	// rejDir is where each batch's rejected rows go ("" when a bad value
	// stops the extraction instead); rejHeader starts such a file.
	rejDir    string
	rejHeader []byte

	cur   *fileMeta // open file, nil between files
	buf   []byte    // buffer being filled for the writer
	fw    *fileWriter
	close sync.Once
}

// fileMeta is what the extracting side knows about the open batch. A batch
// starts with its first source row; its file is created with its first
// written row, its rejected file with its first rejected row.
type fileMeta struct {
	index     int
	path      string
	opened    bool // the batch file exists (a row was written)
	rejOpened bool // the rejected file exists
	rows      int64
	rejected  int64
	truncated int64
	bytes     int64
	firstRow  int64
}

const (
	// writeBufSize is the size of one buffer handed to the writer: large
	// enough that write(2) calls are a small share of the time.
	writeBufSize = 1 << 20
	// writeBuffers is how many buffers exist: one being filled, the rest
	// queued for or being written by the writer.
	writeBuffers = 4
)

// batchPath is where batch file index of table name goes.
func batchPath(dir, name string, index int) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%05d.csv", name, index))
}

func newBatchWriter(ctx context.Context, dir, name string, header []byte, maxRows, maxBytes int64, first int, onBatch func(context.Context, Batch) error) *batchWriter {
	fw := &fileWriter{
		dir:     dir,
		name:    name,
		ops:     make(chan fileOp, writeBuffers+2),
		free:    make(chan []byte, writeBuffers),
		failed:  make(chan struct{}),
		onBatch: onBatch,
		ctx:     ctx,
	}
	for range writeBuffers - 1 {
		fw.free <- make([]byte, 0, writeBufSize)
	}
	fw.wg.Add(1)
	go fw.run()
	return &batchWriter{dir: dir, name: name, header: header, maxRows: maxRows, maxBytes: maxBytes, next: first,
		fw: fw, buf: make([]byte, 0, writeBufSize)}
}

// rejectInto makes bad rows go to rejected files in dir, each starting with
// header, instead of stopping the extraction.
func (w *batchWriter) rejectInto(dir string, header []byte) {
	w.rejDir, w.rejHeader = dir, header
	w.fw.rejDir = dir
}

// begin starts a batch at source row rowNum unless one is open.
func (w *batchWriter) begin(rowNum int64) {
	if w.cur == nil {
		w.cur = &fileMeta{index: w.next, path: batchPath(w.dir, w.name, w.next), firstRow: rowNum, bytes: int64(len(w.header))}
		w.next++
	}
}

// fits reports whether a row of n bytes still fits in the open file; when it
// does not, the caller finishes the file (with the previous row's key) first.
func (w *batchWriter) fits(n int) bool {
	return w.cur == nil || w.cur.bytes+int64(n) <= w.maxBytes
}

// write adds one row (ending in '\n') to the open file, opening one when
// needed; the caller has made room with fits/finish. rowNum is the row's
// 0-based position in the ordered query, and key returns its order_by values
// (only called when the row is the last of its file).
func (w *batchWriter) write(ctx context.Context, row []byte, rowNum int64, truncated int, key func() []string) error {
	w.begin(rowNum)
	if !w.cur.opened {
		w.cur.opened = true
		if w.cur.bytes+int64(len(row)) > w.maxBytes {
			return fmt.Errorf("row of %d bytes does not fit in a batch file of at most %d bytes", len(row), w.maxBytes)
		}
		if err := w.fw.send(fileOp{kind: opOpen, path: w.cur.path}); err != nil {
			return err
		}
		if err := w.append(w.header); err != nil {
			return err
		}
	}
	if err := w.append(row); err != nil {
		return err
	}
	w.cur.rows++
	w.cur.truncated += int64(truncated)
	w.cur.bytes += int64(len(row))
	if w.cur.rows+w.cur.rejected >= w.maxRows {
		return w.finish(ctx, key())
	}
	return nil
}

// reject adds one rejected row (a CSV record of the rejected file) to the
// open batch, opening one when needed. Like write, it finishes the batch
// once it holds maxRows source rows.
func (w *batchWriter) reject(ctx context.Context, line []byte, rowNum int64, key func() []string) error {
	w.begin(rowNum)
	if !w.cur.rejOpened {
		w.cur.rejOpened = true
		if err := w.fw.send(fileOp{kind: opRejOpen, path: rejectedPath(w.rejDir, w.name, w.cur.index), buf: w.rejHeader, own: true}); err != nil {
			return err
		}
	}
	if err := w.fw.send(fileOp{kind: opReject, buf: line, own: true}); err != nil {
		return err
	}
	w.cur.rejected++
	if w.cur.rows+w.cur.rejected >= w.maxRows {
		return w.finish(ctx, key())
	}
	return nil
}

// append adds b to the fill buffer, handing full buffers to the writer.
func (w *batchWriter) append(b []byte) error {
	if len(w.buf)+len(b) > cap(w.buf) {
		if err := w.flush(); err != nil {
			return err
		}
		if len(b) > cap(w.buf) { // a row over 1 MiB goes on its own
			return w.fw.send(fileOp{kind: opData, buf: append([]byte(nil), b...), own: true})
		}
	}
	w.buf = append(w.buf, b...)
	return nil
}

func (w *batchWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.fw.send(fileOp{kind: opData, buf: w.buf}); err != nil {
		return err
	}
	buf, err := w.fw.buffer()
	w.buf = buf
	return err
}

// finish ends the open file; the writer completes it and reports it.
func (w *batchWriter) finish(_ context.Context, lastKey []string) error {
	c := w.cur
	if c == nil {
		return nil
	}
	w.cur = nil
	if err := w.flush(); err != nil {
		return err
	}
	b := Batch{Index: c.index, Rows: c.rows, Rejected: c.rejected, Truncated: c.truncated, FirstRow: c.firstRow, LastKey: lastKey}
	if c.opened {
		b.Path, b.Bytes = c.path, c.bytes
	}
	if c.rejOpened {
		b.RejectedPath = rejectedPath(w.rejDir, w.name, c.index)
	}
	return w.fw.send(fileOp{kind: opFinish, batch: b})
}

// wait stops the writer after the queued work and returns the finished
// batches and the writer's error. An unfinished file (after an error) is
// removed. Safe to call more than once.
func (w *batchWriter) wait() ([]Batch, error) {
	w.close.Do(func() {
		close(w.fw.ops)
		w.fw.wg.Wait()
	})
	return w.fw.batches, w.fw.err
}

// fileWriter is the writer goroutine's side.
type fileWriter struct {
	dir     string
	name    string // Table.Name
	rejDir  string // Options.RejectDir
	ops     chan fileOp
	free    chan []byte   // empty buffers returned by the writer
	failed  chan struct{} // closed when err is set
	onBatch func(context.Context, Batch) error
	ctx     context.Context
	wg      sync.WaitGroup

	// Set by the writer goroutine; read by others only after failed is
	// closed or wg.Wait returned.
	err     error
	batches []Batch

	// Writer goroutine only.
	f    *os.File
	tmp  string
	h    hash.Hash
	rf   *os.File // rejected file of the open batch, nil when it has none
	rtmp string
}

type opKind int

const (
	opOpen    opKind = iota // create path.tmp
	opData                  // write buf to the open file
	opFinish                // complete the open file as batch
	opRejOpen               // create path.tmp for the open batch's rejected rows and write buf (the header)
	opReject                // write buf to the rejected file
)

type fileOp struct {
	kind  opKind
	path  string // opOpen
	buf   []byte // opData
	own   bool   // buf is not a pooled buffer
	batch Batch  // opFinish
}

// send queues op, or returns the writer's error once it has failed.
func (fw *fileWriter) send(op fileOp) error {
	select {
	case fw.ops <- op:
		return nil
	case <-fw.failed:
		return fw.err
	}
}

// buffer returns an empty buffer to fill, waiting for the writer to free one.
func (fw *fileWriter) buffer() ([]byte, error) {
	select {
	case b := <-fw.free:
		return b[:0], nil
	case <-fw.failed:
		return nil, fw.err
	}
}

func (fw *fileWriter) run() {
	defer fw.wg.Done()
	for op := range fw.ops {
		if fw.err == nil {
			if err := fw.do(op); err != nil {
				fw.err = err
				close(fw.failed)
				fw.discard()
			}
		}
		if op.kind == opData && !op.own {
			fw.free <- op.buf // never blocks: at most writeBuffers buffers exist
		}
	}
	fw.discard() // ops closed with a file still open: the extraction stopped
}

func (fw *fileWriter) do(op fileOp) error {
	switch op.kind {
	case opOpen:
		// 0600: the file holds source rows.
		f, err := safefile.CreateNew(op.path + ".tmp")
		if err != nil {
			return fmt.Errorf("create batch file: %w", err)
		}
		fw.f, fw.tmp, fw.h = f, op.path+".tmp", sha256.New()
	case opRejOpen:
		f, err := safefile.CreateNew(op.path + ".tmp")
		if err != nil {
			return fmt.Errorf("create rejected-rows file: %w", err)
		}
		fw.rf, fw.rtmp = f, op.path+".tmp"
		if _, err := f.Write(op.buf); err != nil {
			return err
		}
	case opReject:
		if _, err := fw.rf.Write(op.buf); err != nil {
			return err // *os.PathError names the file
		}
	case opData:
		fw.h.Write(op.buf)
		if _, err := fw.f.Write(op.buf); err != nil {
			return err // *os.PathError: "write <file>.tmp: no space left on device"
		}
	case opFinish:
		b := op.batch
		// The rejected rows first, then the batch file: the batch is
		// recorded (OnBatch) only after both are in place, and an attempt
		// that dies before that writes both again, replacing what it left.
		if fw.rf != nil {
			err := completeFile(fw.rf, fw.rtmp, b.RejectedPath, fw.rejDir)
			fw.rf = nil
			if err != nil {
				return fmt.Errorf("finish rejected-rows file: %w", err)
			}
		} else if fw.rejDir != "" {
			// An earlier attempt may have rejected rows of this batch that
			// are fine now: its file must not outlive it.
			stale := rejectedPath(fw.rejDir, fw.name, b.Index)
			if fi, err := os.Lstat(stale); err == nil && fi.Mode().IsRegular() {
				if err := os.Remove(stale); err != nil {
					return fmt.Errorf("remove the rejected rows an earlier attempt wrote for batch %d: %w", b.Index, err)
				}
			}
		}
		if fw.f != nil {
			err := completeFile(fw.f, fw.tmp, b.Path, fw.dir)
			fw.f = nil
			if err != nil {
				return fmt.Errorf("finish batch file: %w", err)
			}
			b.SHA256 = hex.EncodeToString(fw.h.Sum(nil))
		}
		fw.batches = append(fw.batches, b)
		if fw.onBatch != nil {
			if err := fw.onBatch(fw.ctx, b); err != nil {
				return fmt.Errorf("OnBatch for %s: %w", b.Path, err)
			}
		}
		// Stop between files as soon as the context ends (OnBatch may
		// have waited for a long time).
		return fw.ctx.Err()
	}
	return nil
}

// discard removes the unfinished files, if any.
func (fw *fileWriter) discard() {
	if fw.f != nil {
		_ = fw.f.Close()      // the file is being thrown away
		_ = os.Remove(fw.tmp) // best effort; a leftover .tmp never looks finished
		fw.f = nil
	}
	if fw.rf != nil {
		_ = fw.rf.Close()      // thrown away, as above
		_ = os.Remove(fw.rtmp) // best effort, as above
		fw.rf = nil
	}
}

// completeFile syncs and closes f (written as tmp) and renames it to path
// in dir, refusing a link or other non-file planted at path. On error tmp
// is removed. The os errors name the operation and the file(s): "sync
// X.tmp: ...", "rename X.tmp X: ...", "sync <dir>: ...".
func completeFile(f *os.File, tmp, path, dir string) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = safefile.RefuseLink(path)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort: the error is what matters
	}
	return err
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
