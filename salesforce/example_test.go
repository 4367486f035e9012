package salesforce_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// Example loads a batch file into an emulated org, reads the failed rows
// back, and records the outcome in the status tracker.
func Example() {
	// An emulated org over real HTTP; a real one only needs its My Domain
	// URL and the connected app's credentials here.
	org := httptest.NewServer(sfemu.New())
	defer org.Close()
	c, err := salesforce.New(salesforce.Config{
		LoginURL:     org.URL,
		ClientID:     sfemu.TestClientID,
		ClientSecret: sfemu.TestClientSecret,
		PollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "sfexample")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	batch := filepath.Join(dir, "PRODUCT_00001.csv")
	csvData := "External_Id__c,Name,Price__c\nP-1,Widget,9.99\nP-2,Gadget,12.50\nP-3,,4.00\n"
	if err := os.WriteFile(batch, []byte(csvData), 0o644); err != nil {
		log.Fatal(err)
	}

	spec := salesforce.JobSpec{Object: "Product2", Operation: salesforce.OpUpsert, ExternalIDField: "External_Id__c"}
	results, err := c.LoadFiles(ctx, spec, []salesforce.LoadFile{{Path: batch}}, salesforce.LoadOptions{
		Parallel:     4,
		OnJobCreated: func(path, jobID string) error { fmt.Println("job created for", filepath.Base(path)); return nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	r := results[0]
	fmt.Printf("%s: %s, %d processed, %d failed\n", filepath.Base(r.Path), r.State, r.Processed, r.Failed)

	failed := filepath.Join(dir, "PRODUCT_00001_failed.csv")
	if _, err := c.DownloadResults(ctx, r.JobID, salesforce.ResultFailed, failed); err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(failed)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range rows[1:] { // sf__Id, sf__Error, then the uploaded columns
		code, _, _ := strings.Cut(row[1], ":")
		fmt.Println("failed:", row[2], code)
	}

	status := "Uploaded"
	if !r.Succeeded() {
		status = "In Progress"
	}
	if err := c.UpsertStatus(ctx, "PRODUCT", "Not Started", nil); err != nil {
		log.Fatal(err)
	}
	if err := c.UpdateStatus(ctx, "PRODUCT", status); err != nil {
		log.Fatal(err)
	}
	fmt.Println("tracker PRODUCT:", status)
	// Output:
	// job created for PRODUCT_00001.csv
	// PRODUCT_00001.csv: JobComplete, 3 processed, 1 failed
	// failed: P-3 REQUIRED_FIELD_MISSING
	// tracker PRODUCT: In Progress
}
