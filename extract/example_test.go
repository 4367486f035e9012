package extract_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // only to create the example database

	"github.com/sfmigrate/sfmigrate/airflow"
	"github.com/sfmigrate/sfmigrate/extract"
)

func ExampleSource_Extract() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "extract-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A small source table.
	path := filepath.Join(dir, "erp.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		log.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT, price TEXT, launched DATE, changed DATETIME);
		INSERT INTO product VALUES (1, 'Widget, large', '12.50', '2024-02-29', '2024-03-01 08:30:00'),
		                           (2, 'Gadget "Pro"', '7.00', NULL, '2024-03-02 17:45:10.250'),
		                           (3, 'Gizmo', '0.99', '2024-01-15', '2024-03-03 00:00:00')`)
	db.Close()
	if err != nil {
		log.Fatal(err)
	}

	src, err := extract.Open(ctx, airflow.Connection{ID: "erp", Type: "sqlite", Host: path})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	res, err := src.Extract(ctx, extract.Table{
		Name:    "PRODUCT",
		From:    "product",
		OrderBy: []string{"id"},
		Fields: []extract.Field{
			{Column: "id", Name: "External_Id__c"},
			{Column: "name", Name: "Name"},
			{Column: "price", Name: "Price__c", Type: "currency"},
			{Column: "launched", Name: "Launch_Date__c"},
			{Column: "changed", Name: "Last_Changed__c"},
		},
		NullAs: extract.NullClear,
	}, extract.Options{Dir: filepath.Join(dir, "batches"), BatchSize: 2, Start: extract.Position{BatchIndex: 1}})
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range res.Batches {
		data, err := os.ReadFile(b.Path)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d rows, last key %v\n%s", filepath.Base(b.Path), b.Rows, b.LastKey, data)
	}
	// Output:
	// PRODUCT_00001.csv: 2 rows, last key [2]
	// External_Id__c,Name,Price__c,Launch_Date__c,Last_Changed__c
	// 1,"Widget, large",12.50,2024-02-29,2024-03-01T08:30:00.000Z
	// 2,"Gadget ""Pro""",7.00,#N/A,2024-03-02T17:45:10.250Z
	// PRODUCT_00002.csv: 1 rows, last key [3]
	// External_Id__c,Name,Price__c,Launch_Date__c,Last_Changed__c
	// 3,Gizmo,0.99,2024-01-15,2024-03-03T00:00:00.000Z
}
