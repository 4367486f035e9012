module github.com/sfmigrate/sfmigrate

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0 // test diffs in (-want +got) form
	github.com/jackc/pgx/v5 v5.12.0 // PostgreSQL driver; its text protocol beat typed database/sql scanning and psql \copy here
	github.com/sijms/go-ora/v2 v2.8.24 // Oracle in pure Go: no Oracle client libraries, no cgo (godror needs both)
	github.com/vbauerster/mpb/v8 v8.16.2 // multi-bar progress on a terminal
	go.yaml.in/yaml/v3 v3.0.6 // tables config and emulator object definitions (KnownFields rejects typos)
	golang.org/x/oauth2 v0.38.0 // OAuth 2.0 client-credentials token requests to Salesforce
	golang.org/x/sync v0.25.0 // errgroup: bounded parallel uploads that stop on the first error
	golang.org/x/term v0.48.0 // is stderr a terminal: progress bars or plain log lines
	golang.org/x/text v0.41.0 // NFKC check in Airflow-exact URI parsing (CPython's _checknetloc)
	modernc.org/libc v1.80.1 // C memory helpers for the SQLite fast read path (extract/sqlite.go)
	modernc.org/sqlite v1.62.0 // SQLite in pure Go: the embedded demo source and SQLite extraction
)

require go.uber.org/goleak v1.3.0 // tests: no goroutine of a run outlives it (pipeline/goroutines_test.go)

require github.com/rogpeppe/go-internal v1.16.0 // tests: CLI scenarios in cmd/sfmigrate/testdata/script (testscript)

require (
	github.com/VividCortex/ewma v1.2.0 // indirect
	github.com/acarl005/stripansi v0.0.0-20180116102854-5a71ef0e047d // indirect
	github.com/clipperhouse/uax29/v2 v2.7.0 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/mattn/go-runewidth v0.0.30 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	github.com/vbauerster/cupwriter v0.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)
