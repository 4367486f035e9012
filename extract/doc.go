// Package extract streams rows from a SQL source (SQLite, PostgreSQL or
// Oracle) into Bulk-API-ready batch CSV files: the extract step of the
// pipeline (design.md §1, §3).
//
// A Source is opened from an Airflow connection; Extract runs the table's
// query ordered by its stable key and writes <Name>_<NNNNN>.csv files of at
// most Options.BatchSize rows and Options.MaxBytes bytes. Each file is
// written (mode 0600: it holds source rows) as .tmp, synced and renamed when
// complete, then reported through
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
//   - text: whole (a value over the field limit is refused, unless
//     Field.Truncate cuts it to the limit),
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
//     text distinct from null). A source text that is literally "#N/A"
//     is refused, since Salesforce would read it as null too;
//   - binary columns are refused.
//
// A value that cannot be written (invalid UTF-8, a date that is not one, a
// value over the field limit, NaN, ...; see Type mapping) is refused with a
// *ValueError naming the table, the row's position and key, the column, the
// value and the fix. With Options.RejectDir the refusal fails that row
// alone: it goes to the batch's rejected file (<Name>_<NNNNN>_rejected.csv:
// key, column, field, value excerpt, length, reason, fix) and the
// extraction goes on, up to Options.MaxRejected rows; without it the first
// refusal stops the extraction.
//
// # Rejected rows and positions
//
// A batch is Options.BatchSize source rows: the ones written plus the ones
// rejected (a batch whose rows were all rejected has no file). FirstRow and
// LastKey are those of its source rows, so the next batch starts at
// FirstRow+Rows+Rejected or after LastKey whatever was rejected. A batch's
// rejected file is completed before the batch is reported, and written
// again whole when the batch is extracted again, so a resume never
// repeats a rejected row. Batch and rejected files are never written
// through a symbolic link: a link (or directory) found at their path, or a
// batch or rejected directory that is a link, is an error naming it
// (ErrLink); a leftover .tmp of an interrupted attempt is replaced.
//
// Options.OnlyKeys re-extracts only the rows with the given order_by keys
// (e.g. the rejected ones, once fixed at the source) by scanning the
// ordered query and keeping the matching rows.
//
// A query (or table) the database refuses to compile — a syntax error, an
// unknown table or column, a missing privilege — stops the extraction
// before any row is read with a *QueryError: it names the tables-config
// setting (tables.<Name>.query or .table), shows the query as configured
// and the database's own message, not the SQL Extract wraps around the
// query, and reports itself as a configuration problem (ConfigError).
//
// # Type mapping
//
// What each source type becomes in the CSV when Field.Type is empty.
// "Refused" means a *ValueError naming the table, the row's position and
// key, the column, the value and the fix (the row rejected, or the
// extraction stopped; see Values).
// TestSQLiteTypeMapping, TestPostgresTypeMapping (both on the real
// engines) and TestOracleTypeMapping (wire bytes through go-ora's own
// decoders) check every line.
//
// PostgreSQL. The session pins TimeZone=UTC, DateStyle=ISO,
// IntervalStyle=iso_8601 and extra_float_digits=3, whatever the role,
// database or server set (TestPostgresSessionSettings):
//
//	smallint, integer, bigint       digits as the server prints them
//	numeric                         exact text, the column's scale kept (12.50); NaN, ±Infinity refused
//	real, double precision          shortest exact decimal without exponent: 1e20 -> 100000000000000000000,
//	                                1e-7 -> 0.0000001, -0 -> 0, real 0.7 -> 0.7; NaN, ±Infinity refused
//	money                           refused (locale-formatted text): cast it to numeric
//	boolean                         true / false
//	date                            yyyy-MM-dd; ±infinity, BC dates and years after 9999 refused
//	timestamp                       yyyy-MM-ddTHH:mm:ss.SSSZ, the wall clock read in Table.SourceTimeZone
//	timestamp with time zone        yyyy-MM-ddTHH:mm:ss.SSSZ of the instant
//	time, timetz, interval          their text: 13:14:15.5, 13:14:15+02, P1DT2H (ISO 8601)
//	text, varchar, char(n)          the text; char(n) keeps its blank padding (rtrim in the query if unwanted)
//	json, jsonb, xml, uuid, inet,   their text: {"a": 2, "b": 1}, {1,2}, {x,"y,z"}, (1,2), ...
//	  bit, enums, arrays, points
//	domains                         as their base type (a domain over bytea is refused)
//	bytea                           refused
//
// SQLite stores any value in any column, so a value is read by its storage
// class, and the declared type only says how to read text:
//
//	INTEGER values                  digits
//	REAL values                     shortest exact decimal without exponent; ±Inf refused (SQLite stores NaN as NULL)
//	TEXT values                     the text as stored
//	BLOB values                     refused, in any column
//	NUMERIC, DECIMAL(p,s) columns   what SQLite stored: NUMERIC affinity turns '1234.5000' into 1234.5 and
//	                                '99999999999999.9999' into 100000000000000 at INSERT (15 significant
//	                                digits): keep exact decimals in TEXT columns and set Field.Type
//	DATE columns                    text yyyy-MM-dd -> yyyy-MM-dd
//	DATETIME, TIMESTAMP columns     text yyyy-MM-dd[ or T]HH:mm[:ss[.fff]][Z, ±hh, ±hhmm, ±hh:mm] -> UTC datetime
//	                                (zone-less text read in SourceTimeZone); numbers are refused, since Unix
//	                                seconds, milliseconds and Julian days look alike: convert in the query
//	BOOLEAN columns                 1/0, true/false, t/f, yes/no, y/n, on/off -> true / false; others refused
//
// Oracle, as github.com/sijms/go-ora/v2 v2.8.24 decodes it (oracle.go):
//
//	NUMBER, FLOAT                   exact decimal text without exponent or trailing zeros (Oracle keeps no
//	                                scale: NUMBER(10,2) 12.50 is 12.5); ±Infinity refused
//	BINARY_DOUBLE                   shortest exact decimal; NaN, ±Inf refused
//	BINARY_FLOAT                    shortest decimal of the float32 (selected as BINARY_DOUBLE: go-ora's own
//	                                BINARY_FLOAT decoding turns 0.7 into 0.6)
//	DATE, TIMESTAMP                 UTC datetime, the wall clock read in SourceTimeZone; BC dates refused
//	TIMESTAMP WITH [LOCAL] TIME     UTC datetime of the instant (numeric offset or region name)
//	  ZONE
//	CHAR, NCHAR                     the text with its blank padding
//	VARCHAR2, NVARCHAR2, LONG,      the text, whole
//	  CLOB, NCLOB
//	INTERVAL YEAR TO MONTH,         go-ora's text: +01-02, +01 02:03:04.000000
//	  DAY TO SECOND
//	ROWID, UROWID                   the text
//	RAW, LONG RAW, BLOB, BFILE      refused
//	BOOLEAN (23ai)                  true / false
//
// A known driver limit: go-ora decodes NUMBER values from 1e-130 up to
// 1e-128 (exponent byte 0x80) as 0.
//
// On every engine: NULL and empty text are written empty (or #N/A with
// NullClear), and a row whose only field is empty as "" (an empty line
// would be skipped as blank). Text that is exactly #N/A (any case) is
// refused, because Salesforce would read it as "clear the field"; so are
// NUL bytes and invalid UTF-8. BOMs, U+2028 and other characters pass
// unchanged; leading and trailing spaces are kept (and need no quotes).
//
// Field.Type changes the form: "date" writes a timestamp's calendar day
// (the wall clock's day for zone-less values, the instant's day in
// SourceTimeZone for zoned ones), "datetime" writes a date as midnight in
// SourceTimeZone, "boolean" reads 0/1 and the spellings above, and
// "double", "currency", "percent", "int" read text as an exact decimal.
//
// A zone-less timestamp that falls in a daylight-saving gap or overlap of
// SourceTimeZone is read the way PostgreSQL reads it: in the gap with the
// offset from before the change (02:30 on a spring-forward night in
// Europe/Berlin is 01:30Z), in the overlap as standard time.
//
// # Ordering and resuming
//
// Table.OrderBy must be a unique, non-null key: Extract checks that
// consecutive keys differ and are not NULL, since otherwise a batch index
// would not always mean the same rows. Keys are compared by their text, so
// the database must call two keys equal only when their text is equal:
// SQLite keys are ordered and compared with COLLATE BINARY (a NOCASE
// column would tie 'a' and 'A'), Oracle sessions use NLS_SORT and NLS_COMP
// BINARY, numbers get canonical text (PostgreSQL numeric 1.50 = 1.5), and
// PostgreSQL keys under a nondeterministic collation or of type citext
// are refused with the fix.
//
// Each Batch carries its last key; Position.AfterKey starts after such a
// key (keyset), else Position.Row rows are skipped with the engine's
// OFFSET (see dialect.go for the per-engine choice). A key that would not
// read back as the same value (SQLite text that looks like a number in a
// column without TEXT affinity, bytes, invalid UTF-8) leaves that batch's
// LastKey nil, so the next resume uses the offset. TestSQLiteResumeKeys
// and TestPostgresResumeKeys resume after every batch boundary, for every
// key kind, and compare with a full run.
//
// # SQLite locking
//
// An extraction is one read: it holds SQLite's read lock (or, in WAL mode,
// one snapshot) from its first row to its last. In rollback-journal mode a
// writer cannot commit meanwhile, and the extraction waits up to 30 s for a
// writer that is committing; in WAL mode writers go on and the extraction
// reads the rows as they were when it started.
package extract
