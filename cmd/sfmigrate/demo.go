package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// demoOptions is the sample 'sfmigrate demo' generates and where it goes.
type demoOptions struct {
	dir                                                      string
	products, prices, accounts, contacts, orphans, batchSize int
	json                                                     bool
}

func parseDemo(env Env, args []string) (*demoOptions, error) {
	o := &demoOptions{}
	fs := newFlagSet(env, "demo", "sfmigrate demo [--dir D] [--products N] [--prices N] [--accounts N] [--contacts N] [--orphans N] [--json]", `
Shows the whole pipeline with nothing to set up:
  1. generates an ERP sample (SQLite): accounts with parent accounts and a primary contact,
     contacts, products and price lists, with the values real data has: quotes, commas and
     line breaks in text, many scripts and emoji, 4,000-character texts, NULLs, decimals
     with 18 digits, local timestamps in DST gaps and overlaps, leap days;
  2. starts the Salesforce emulator in this process on 127.0.0.1 (a free port);
  3. runs the plan of all four tables ('sfmigrate run --all-tables'): ACCOUNTS (Account)
     without its parent and primary contact, then CONTACTS (Contact, linked to their account
     through Account.External_Id__c) and PRODUCTS (Product2) at the same time, then PRICES
     (Product_Price__c, linked through Product__r.External_Id__c) and the accounts' second
     pass, which sets Parent.External_Id__c and Primary_Contact__r.External_Id__c;
  4. prints where the results, summaries and manifests are, and what landed in the org.

Everything goes under --dir: erp.db, tables.yaml, runs/ (manifests, batch files) and
salesforce/logs/ (results). The emulator stops when the demo ends.

Examples:
  sfmigrate demo
  sfmigrate demo --products 5000 --prices 20000 --dir /tmp/sfdemo
  sfmigrate demo --orphans 25      # 25 prices reference deleted products: exit 3, failed-results file

`+exitCodesHelp)
	fs.StringVar(&o.dir, "dir", "sfmigrate-demo", "directory for the sample database, runs and results")
	fs.IntVar(&o.products, "products", 40000, "products to generate")
	fs.IntVar(&o.prices, "prices", 260000, "prices to generate")
	fs.IntVar(&o.accounts, "accounts", 5000, "accounts to generate")
	fs.IntVar(&o.contacts, "contacts", 10000, "contacts to generate")
	fs.IntVar(&o.orphans, "orphans", 0, "extra prices that reference products missing from the ERP (they fail in Salesforce)")
	fs.IntVar(&o.batchSize, "batch-size", 25000, "rows per batch file")
	fs.BoolVar(&o.json, "json", false, "print a JSON object with the plan's summary as the last line of stdout")
	if err := parseFlags(env, fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("demo: unexpected argument %q (see 'sfmigrate demo --help')", fs.Arg(0))
	}
	return o, nil
}

func (o *demoOptions) validate() error {
	if o.products < 1 || o.prices < 0 || o.orphans < 0 || o.batchSize < 1 || o.accounts < 0 || o.contacts < 0 {
		return usageErrorf("demo: --products must be at least 1, --prices, --accounts, --contacts, --orphans at least 0, --batch-size at least 1")
	}
	return nil
}

func runDemo(ctx context.Context, env Env, o *demoOptions) error {
	abs, err := filepath.Abs(o.dir)
	if err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	say := func(format string, a ...any) { fmt.Fprintf(env.Stderr, "demo: "+format+"\n", a...) }

	// 1. The sample.
	dbPath := filepath.Join(abs, "erp.db")
	t0 := time.Now()
	st, err := demo.Generate(ctx, dbPath, demo.Options{Products: o.products, Prices: o.prices, OrphanPrices: o.orphans, Accounts: o.accounts, Contacts: o.contacts})
	if err != nil {
		return fmt.Errorf("generate the demo database: %w", err)
	}
	say("generated %s: %d accounts (%d with a parent), %d contacts, %d products, %d prices (%s) in %s", dbPath, st.Accounts, st.WithParent, st.Contacts,
		st.Products, st.Prices, humanBytes(st.Bytes), time.Since(t0).Round(time.Millisecond))
	tablesPath := filepath.Join(abs, "tables.yaml")
	if err := os.WriteFile(tablesPath, []byte(demo.TablesYAML()), 0o644); err != nil {
		return fmt.Errorf("write demo tables config: %w", err)
	}

	// 2. The emulator, in this process.
	emu := sfemu.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the emulator: %w", err)
	}
	srv := newEmulatorServer(emu, context.WithoutCancel(ctx))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // the demo is over; nothing waits on the emulator
		<-serveErr
	}()
	baseURL := "http://" + ln.Addr().String()
	say("Salesforce emulator listening on %s (client id %s)", baseURL, sfemu.TestClientID)

	// 3. The runs, with the connections an Airflow deployment would set.
	sfConn, _ := json.Marshal(map[string]any{"conn_type": "http", "host": baseURL, "login": sfemu.TestClientID, "password": sfemu.TestClientSecret})
	dbConn, _ := json.Marshal(map[string]any{"conn_type": "sqlite", "host": dbPath})
	vars := map[string]string{"AIRFLOW_CONN_SALESFORCE_API": string(sfConn), "AIRFLOW_CONN_" + strings.ToUpper(demo.ConnID): string(dbConn)}
	runEnv := env
	runEnv.Getenv = func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "AIRFLOW_") {
			return "" // the demo's settings are its own, whatever the shell has
		}
		return env.getenv(k)
	}
	tables, err := pipeline.LoadTablesConfig(tablesPath)
	if err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	var wmu sync.Mutex
	logf := func(format string, a ...any) {
		wmu.Lock()
		defer wmu.Unlock()
		fmt.Fprintf(env.Stderr, "%s sfmigrate: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	sum, runErr := plan.Execute(ctx, plan.Options{
		WorkDir: abs, LogsDir: filepath.Join(abs, "salesforce", "logs"), RunID: "demo-" + stamp, Config: tables,
		Conf: fmt.Sprintf(`{"batch_size": %d}`, o.batchSize), ConfSource: "demo", Getenv: runEnv.Getenv,
		Reporter:     func(step string) pipeline.Reporter { return &stepReporter{step: step, logf: logf} },
		Log:          logf,
		Logger:       newOutput(runEnv, false).logger(),
		PollInterval: 50 * time.Millisecond,
	})
	if sum == nil {
		return runErr
	}
	var pe interface{ PartialFailure() bool }
	if runErr != nil && !(errors.As(runErr, &pe) && pe.PartialFailure()) {
		return runErr
	}
	writePlanSummary(env.Stderr, sum)

	// 4. Where everything is.
	w := env.Stdout
	if o.json {
		w = env.Stderr
	}
	fmt.Fprintf(w, "\nDemo finished. Everything is under %s:\n", abs)
	fmt.Fprintf(w, "  source database   %s\n  tables config     %s\n", dbPath, tablesPath)
	fmt.Fprintf(w, "  plan              %s (tracker record %s)\n", sum.PlanFile, sum.Tracker)
	for _, s := range sum.Steps {
		fmt.Fprintf(w, "  %-15s %s: %d records succeeded, %d failed\n", s.ID, s.State, s.Successful, s.Failed)
		fmt.Fprintf(w, "                  results  %s\n                  manifest %s\n", s.ResultsDir, s.Manifest)
	}
	for _, obj := range []string{"Account", "Contact", "Product2", "Product_Price__c"} {
		if n, err := emuQuery(ctx, baseURL, "SELECT COUNT() FROM "+obj, nil); err == nil {
			fmt.Fprintf(w, "  the emulator's org now holds %d %s records (SELECT COUNT() FROM %s)\n", n, obj, obj)
		}
	}
	fmt.Fprintf(w, "  the emulator ran %d ingest jobs and counted %d API calls\n", len(emu.Jobs()), emu.APIUsage())
	if n, err := emuQuery(ctx, baseURL, "SELECT COUNT() FROM Account WHERE ParentId != null", nil); err == nil {
		fmt.Fprintf(w, "  %d accounts have their parent account set by the plan's second pass (SELECT COUNT() FROM Account WHERE ParentId != null)\n", n)
	}
	fmt.Fprintf(w, "Next: 'sfmigrate plan --tables-config %s' shows the plan; point AIRFLOW_CONN_SALESFORCE_API at your org and run 'sfmigrate run --all-tables --tables-config F' (see 'sfmigrate run --help').\n", tablesPath)
	if o.json {
		data, err := json.Marshal(map[string]any{"dir": abs, "plan": sum})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", data)
	}
	return runErr
}

// emuQuery signs in to the emulator at baseURL with the test client and runs
// one SOQL query through the REST query endpoint, as a person checking an
// org would. It returns totalSize and decodes the records into out (if not nil).
func emuQuery(ctx context.Context, baseURL, soql string, out any) (int, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := doJSON(req, &tok); err != nil {
		return 0, fmt.Errorf("emulator token: %w", err)
	}
	u := tok.InstanceURL + "/services/data/v66.0/query?q=" + url.QueryEscape(soql)
	var all int
	for u != "" {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		var page struct {
			TotalSize      int             `json:"totalSize"`
			Done           bool            `json:"done"`
			NextRecordsURL string          `json:"nextRecordsUrl"`
			Records        json.RawMessage `json:"records"`
		}
		if err := doJSON(req, &page); err != nil {
			return 0, fmt.Errorf("emulator query %q: %w", soql, err)
		}
		all = page.TotalSize
		if out != nil {
			if sink, ok := out.(*[]map[string]any); ok {
				var recs []map[string]any
				if err := json.Unmarshal(page.Records, &recs); err != nil {
					return 0, err
				}
				*sink = append(*sink, recs...)
			}
		}
		u = ""
		if !page.Done && page.NextRecordsURL != "" {
			u = tok.InstanceURL + page.NextRecordsURL
		}
	}
	return all, nil
}

func doJSON(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body[:min(len(body), 500)])))
	}
	return json.Unmarshal(body, out)
}
