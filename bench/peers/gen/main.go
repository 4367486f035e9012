// Command gen writes the peer benchmark's source database: the demo's
// PRODUCTS table (internal/demo) with N rows and no prices, and the
// tables config sfmigrate reads it with.
//
//	go run ./bench/peers/gen -rows 200000 -db /tmp/x/erp.db -tables /tmp/x/tables.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/sfmigrate/sfmigrate/internal/demo"
)

func main() {
	rows := flag.Int("rows", 200_000, "rows in PRODUCTS")
	db := flag.String("db", "erp.db", "SQLite `file` to write")
	tables := flag.String("tables", "tables.yaml", "tables config `file` to write")
	flag.Parse()
	st, err := demo.Generate(context.Background(), *db, demo.Options{Products: *rows, Seed: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*tables, []byte(demo.TablesYAML()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("gen: %d products in %s (%d bytes)\n", st.Products, *db, st.Bytes)
}
