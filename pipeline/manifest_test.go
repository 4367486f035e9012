package pipeline

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunStoreRoundTripAndLock(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenRun(dir, "r-1", func(m *Manifest) { m.Table = "T" })
	if err != nil {
		t.Fatal(err)
	}
	// A second opener is refused while the first holds the lock.
	if _, err := OpenRun(dir, "r-1", nil); err == nil || !strings.Contains(err.Error(), "in use by another sfmigrate process") {
		t.Fatalf("second open: err = %v", err)
	}
	err = st.Update(func(m *Manifest) error {
		m.Batches = append(m.Batches, &BatchState{Index: 2, Rows: 5}, &BatchState{Index: 1, Rows: 3, JobID: "750x", JobState: "JobComplete", Processed: 3, Failed: 1})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), "manifest.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary manifest left behind: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := OpenRun(dir, "r-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	m := st2.Snapshot()
	if m.Table != "T" || len(m.Batches) != 2 || m.Batches[0].Index != 1 {
		t.Fatalf("reloaded manifest = %+v", m)
	}
	tot := m.Totals()
	if tot.Rows != 8 || tot.Successful != 2 || tot.Failed != 1 || tot.Jobs != 1 || tot.JobsDone != 1 {
		t.Errorf("totals = %+v", tot)
	}
}

func TestReadManifestRefusesNewerAndDamaged(t *testing.T) {
	dir := t.TempDir()
	run := RunDir(dir, "r")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(run, "manifest.json"), []byte(`{"version": 99, "run_id": "r"}`), 0o644)
	if _, err := ReadManifest(dir, "r"); err == nil || !strings.Contains(err.Error(), "newer sfmigrate") {
		t.Errorf("newer: err = %v", err)
	}
	os.WriteFile(filepath.Join(run, "manifest.json"), []byte(`{"version": 1, "run_`), 0o644)
	if _, err := ReadManifest(dir, "r"); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged: err = %v", err)
	}
}

func TestValidateRunID(t *testing.T) {
	for _, ok := range []string{"PRODUCT-20261125T193831Z", "manual__2026-11-25T19:38:31.123456+00:00", "r1",
		"manual__2026~retry", "..", "a/b", "-x", "a b", "prix é", strings.Repeat("x", MaxRunIDLen)} {
		if err := ValidateRunID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a\nb", "tab\there", "\xff", strings.Repeat("x", MaxRunIDLen+1)} {
		err := ValidateRunID(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "--run-id") {
			t.Errorf("%q: error does not name the flag: %v", bad, err)
		}
	}
}

// TestRunDirName: ids the old rule allowed keep their directory; any other
// id maps to one safe name, the same each time, and different ids never
// share one.
func TestRunDirName(t *testing.T) {
	for id, want := range map[string]string{
		"PRODUCT-20261125T193831Z":                 "PRODUCT-20261125T193831Z",
		"manual__2026-11-25T19:38:31.123456+00:00": "manual__2026-11-25T19:38:31.123456+00:00",
		"manual__2026~retry":                       "manual__2026%7Eretry",
		"..":                                       "%2E.",
		".hidden":                                  "%2Ehidden",
		"a/b":                                      "a%2Fb",
		"a%2Fb":                                    "a%252Fb",
		"prix é":                                   "prix%20%C3%A9",
	} {
		got := RunDirName(id)
		if got != want {
			t.Errorf("RunDirName(%q) = %q, want %q", id, got, want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != id {
			t.Errorf("%q does not unescape to %q: %q, %v", got, id, back, err)
		}
	}
	seen := map[string]string{}
	ids := []string{strings.Repeat("~", MaxRunIDLen), strings.Repeat("~", MaxRunIDLen-1) + "x", strings.Repeat("a", MaxRunIDLen), strings.Repeat("a", MaxRunIDLen-1) + "b"}
	for _, id := range ids {
		name := RunDirName(id)
		if len(name) > 200 || strings.ContainsAny(name, "/\x00") || name != RunDirName(id) {
			t.Errorf("RunDirName(%.20q...) = %q: too long, unsafe or unstable", id, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("%.20q and %.20q share directory %q", id, other, name)
		}
		seen[name] = id
	}
	// A run with such an id opens, and its manifest keeps the id as given.
	dir := t.TempDir()
	id := "manual__2026-12-05T01:00:00+00:00~retry/2"
	s, err := OpenRun(dir, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	m, err := ReadManifest(dir, id)
	if err != nil || m.RunID != id {
		t.Fatalf("manifest: %v, %+v", err, m)
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "manual__2026-12-05T01:00:00+00:00%7Eretry%2F2", "manifest.json")); err != nil {
		t.Error(err)
	}
}

// TestManifestFileForm: the file is the manifest whole (it reads back
// equal), with one line per batch so that people can read and grep it.
func TestManifestFileForm(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenRun(dir, "r", func(m *Manifest) { m.Table = "T" })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(func(m *Manifest) error {
		m.Batches = manifestBatches(3)
		m.Target = &TargetState{Object: "Product2", Fields: []TargetField{{Column: "ID", Name: "External_Id__c", Type: "string", Length: 80}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir, "r")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st.Snapshot(), got); diff != "" {
		t.Errorf("manifest read back (-written +read):\n%s", diff)
	}
	data, err := os.ReadFile(filepath.Join(RunDir(dir, "r"), "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if !strings.Contains(string(data), fmt.Sprintf("\n    {\"index\":%d,", i)) {
			t.Errorf("batch %d is not on a line of its own:\n%s", i, data)
		}
	}
	// No batches: still a JSON array.
	if err := st.Update(func(m *Manifest) error { m.Batches = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadManifest(dir, "r"); err != nil || len(m.Batches) != 0 {
		t.Errorf("empty batches: %v, %+v", err, m)
	}
}

// manifestBatches makes n batches as a finished run records them.
func manifestBatches(n int) []*BatchState {
	var bs []*BatchState
	for i := 1; i <= n; i++ {
		bs = append(bs, &BatchState{Index: i, File: fmt.Sprintf("batches/PRICES_%05d.csv", i), Rows: 10000, Bytes: 950000,
			SHA256: strings.Repeat("5d41402abc4b2a76", 4), JobID: "7505g000003PBYnAAO", JobState: "JobComplete",
			Processed: 10000, FirstRow: int64(i-1) * 10000, LastKey: []string{fmt.Sprintf("PP-%08d", i*10000)},
			Results: map[string]*ResultFile{
				ResultSuccessful:  {Path: fmt.Sprintf("salesforce/logs/r/PRICES_%05d_successful.csv", i), Rows: 10000},
				ResultFailed:      {Path: fmt.Sprintf("salesforce/logs/r/PRICES_%05d_failed.csv", i)},
				ResultUnprocessed: {Path: fmt.Sprintf("salesforce/logs/r/PRICES_%05d_unprocessed.csv", i)},
			}})
	}
	return bs
}

// BenchmarkManifestUpdate is the cost of one manifest write (encode, write,
// fsync, rename) for a run of 100 and of 1,000 batches (1M and 10M rows at
// the default batch size). Every state change of a batch pays it.
func BenchmarkManifestUpdate(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batches=%d", n), func(b *testing.B) {
			st, err := OpenRun(b.TempDir(), "r", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := st.Update(func(m *Manifest) error { m.Batches = manifestBatches(n); return nil }); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := st.Update(func(m *Manifest) error { m.Batches[0].Processed++; return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSameBatchSeesEveryField: the manifest writer re-encodes a batch only
// when sameBatch says it changed, so a field sameBatch does not compare
// would be written stale. Changing any one field must count as a change,
// and a clone must count as the same.
func TestSameBatchSeesEveryField(t *testing.T) {
	base := manifestBatches(1)[0]
	now := time.Now()
	base.HandedAt = &now
	base.PreviousJobs = []string{"750a"}
	if c := cloneBatch(base); !sameBatch(&c, base) {
		t.Fatal("a clone differs from its original")
	}
	typ := reflect.TypeFor[BatchState]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		changed := cloneBatch(base)
		v := reflect.ValueOf(&changed).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.ValueOf("x")))
		case reflect.Pointer: // *time.Time
			later := now.Add(time.Second)
			v.Set(reflect.ValueOf(&later))
		case reflect.Map:
			changed.Results[ResultFailed] = &ResultFile{Path: "other.csv", Rows: 1}
		default:
			t.Fatalf("field %s: kind %s not covered by this test", f.Name, v.Kind())
		}
		if sameBatch(&changed, base) {
			t.Errorf("sameBatch does not see a change of %s", f.Name)
		}
	}
	// The map's values are compared, not only its keys.
	changed := cloneBatch(base)
	changed.Results[ResultSuccessful].Rows++
	if sameBatch(&changed, base) {
		t.Error("sameBatch does not see a changed result file")
	}
}
