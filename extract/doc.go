// Package extract streams rows from a SQL source (SQLite, PostgreSQL or
// Oracle) into Bulk-API-ready batch CSV files: the extract step of the
// pipeline (design.md §1, §3).
//
// A Source is opened from an Airflow connection; Extract runs the table's
// query ordered by its stable key and writes <Name>_<NNNNN>.csv files of at
// most Options.BatchSize rows and Options.MaxBytes bytes. Each file is
// written as .tmp, synced and renamed when complete, then reported through
// Options.OnBatch (which the pipeline uses to upload it while extraction goes
// on). Rows flow one at a time, so memory does not grow with the table.
//
//	src, err := extract.Open(ctx, conn) // conn: airflow.Connection of type sqlite, postgres or oracle
//	if err != nil { ... }
//	defer src.Close()
//	res, err := src.Extract(ctx, extract.Table{
//		Name:    "PRODUCT",
//		From:    "products",
//		OrderBy: []string{"id"},
//		Fields:  []extract.Field{{Column: "id", Name: "External_Id__c"}, {Column: "name", Name: "Name"}},
//	}, extract.Options{Dir: "runs/r1/batches", BatchSize: 10000, Start: extract.Position{BatchIndex: 1}})
//
// # Values
//
// Values are written the way the Bulk API 2.0 accepts them
// (salesforce-api.md §4):
//
//   - header: the Salesforce field names, in Table.Fields order; UTF-8, no
//     byte-order mark, LF line endings;
//   - text: whole (a value over the field limit fails the extraction),
//     quoted when it holds a comma, quote, CR or LF, quotes doubled; CR LF
//     and lone CR inside a value become LF, because the files are declared
//     with lineEnding LF and a CR would trip Salesforce's line-ending check;
//   - numbers: plain decimals with '.', never an exponent; exact decimal
//     types (PostgreSQL numeric, Oracle NUMBER) keep their exact digits and
//     never pass through float64; floats print in their shortest exact form;
//   - booleans: true / false;
//   - dates: yyyy-MM-dd, never shifted by a time zone;
//   - datetimes: yyyy-MM-ddTHH:mm:ss.SSSZ in UTC; zone-less timestamps are
//     read in Table.SourceTimeZone; fractions below a millisecond are
//     truncated;
//   - NULL: empty (field left unchanged) or #N/A (field cleared) per
//     Table.NullAs; an empty string counts as NULL (Salesforce has no empty
//     text distinct from null). Note that Salesforce reads a source text
//     that is literally "#N/A" as null too;
//   - binary columns are refused.
//
// A value that cannot be written (invalid UTF-8, a date that is not one, a
// value over the field limit, NaN, ...) stops the extraction with a
// *ValueError naming the table, the row's position and key, the column, the
// value and the fix.
//
// # Ordering and resuming
//
// Table.OrderBy must be a unique, non-null key: Extract checks that
// consecutive keys differ and are not NULL, since otherwise a batch index
// would not always mean the same rows. Each Batch carries its last key;
// Position.AfterKey starts after such a key (keyset), else Position.Row rows
// are skipped with the engine's OFFSET (see dialect.go for the per-engine
// choice).
package extract
