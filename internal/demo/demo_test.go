package demo

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/pipeline"
)

func TestGenerateSmall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "erp.db")
	st, err := Generate(t.Context(), path, Options{Products: 300, Prices: 900, OrphanPrices: 3})
	if err != nil {
		t.Fatal(err)
	}
	if st.Products != 300 || st.Prices != 903 || st.Orphans != 3 {
		t.Fatalf("stats = %+v", st)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var products, prices, nullNames, orphans int
	db.QueryRow(`SELECT COUNT(*) FROM PRODUCTS`).Scan(&products)
	db.QueryRow(`SELECT COUNT(*) FROM PRICES`).Scan(&prices)
	db.QueryRow(`SELECT COUNT(*) FROM PRODUCTS WHERE NAME IS NULL OR NAME = ''`).Scan(&nullNames)
	db.QueryRow(`SELECT COUNT(*) FROM PRICES WHERE PRODUCT_ID NOT IN (SELECT PRODUCT_ID FROM PRODUCTS)`).Scan(&orphans)
	if products != 300 || prices != 903 || nullNames != 0 || orphans != 3 {
		t.Errorf("products=%d prices=%d empty names=%d orphans=%d", products, prices, nullNames, orphans)
	}
	// The sample must carry the hard values it promises.
	var tricky int
	db.QueryRow(`SELECT COUNT(*) FROM PRODUCTS WHERE NAME LIKE '%"%' OR NAME LIKE '%,%' OR instr(NAME, char(10)) > 0`).Scan(&tricky)
	if tricky == 0 {
		t.Error("no names with quotes, commas or line breaks")
	}
	// The shipped tables config parses and maps every column of the query.
	cfg, err := pipeline.ParseTablesConfig(strings.NewReader(TablesYAML()), "demo tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ProductsTable, PricesTable} {
		tc := cfg.Tables[name]
		q := tc.Query
		if q == "" {
			q = "SELECT * FROM " + tc.Table
		}
		rows, err := db.Query(q + " LIMIT 1")
		if err != nil {
			t.Fatalf("%s query: %v", name, err)
		}
		cols, _ := rows.Columns()
		rows.Close()
		have := map[string]bool{}
		for _, c := range cols {
			have[c] = true
		}
		for _, f := range tc.Fields {
			if !have[f.Column] {
				t.Errorf("%s: column %s of the mapping is not in the query (%v)", name, f.Column, cols)
			}
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	for _, p := range []string{a, b} {
		if _, err := Generate(t.Context(), p, Options{Products: 50, Prices: 100, Seed: 7}); err != nil {
			t.Fatal(err)
		}
	}
	dump := func(p string) string {
		db, err := sql.Open("sqlite", p)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var s string
		db.QueryRow(`SELECT group_concat(PRODUCT_ID || NAME || ifnull(LIST_PRICE,'') || ifnull(LAST_CHANGED,''), '|') FROM PRODUCTS`).Scan(&s)
		return s
	}
	if dump(a) != dump(b) || dump(a) == "" {
		t.Error("same seed gave different samples")
	}
}

// TestGenerateOddPath: a directory name with characters that mean
// something in a SQLite URI ('#', '?', '%', space) is still just a path.
func TestGenerateOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run #1? 100% done")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "erp.db")
	if _, err := Generate(t.Context(), path, Options{Products: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
