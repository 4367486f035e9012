// Package demo generates the sample ERP database that `sfmigrate demo`
// migrates: accounts (with parent accounts and a primary contact), contacts,
// products and their price lists in a SQLite file, with the values
// that make real migrations hard (quotes, commas and line breaks in text,
// non-Latin scripts and emoji, long descriptions, NULLs, decimals with many
// digits, local timestamps inside DST gaps and overlaps, leap days).
//
// The data is deterministic for a given seed, so tests can generate a small
// sample and know exactly what must land in Salesforce.
package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Options size the sample.
type Options struct {
	Products int    // rows in PRODUCTS (at least 1)
	Prices   int    // rows in PRICES (may be 0)
	Seed     uint64 // random seed (default 1)
	// OrphanPrices is the number of extra prices that reference a product
	// that does not exist: Salesforce rejects them (INVALID_FIELD), which
	// shows the failed-results file and exit code 3.
	OrphanPrices int
	// Accounts and Contacts are the rows of ACCOUNTS and CONTACTS (may be
	// 0). Every third account after the first has a parent account, every
	// second account whose contact exists has a primary contact, and
	// contact i belongs to account 1+(i-1)%Accounts.
	Accounts, Contacts int
}

// Stats says what was generated.
type Stats struct {
	Products int
	Prices   int // including orphans
	Orphans  int
	Accounts int
	Contacts int
	// WithParent and WithPrimary count the accounts that have a parent
	// account and a primary contact.
	WithParent, WithPrimary int
	Bytes                   int64 // size of the database file
}

// Tables names and the connection id the demo's tables config uses.
const (
	ProductsTable = "PRODUCTS"
	PricesTable   = "PRICES"
	AccountsTable = "ACCOUNTS"
	ContactsTable = "CONTACTS"
	ConnID        = "demo_erp"
	// TimeZone is the zone the ERP stores its timestamps in (without offset).
	TimeZone = "Europe/Berlin"
)

// TablesYAML is the tables config for the sample database.
func TablesYAML() string {
	return `# Tables config for the sfmigrate demo database (see design.md §2).
status_tracker:
  sf_object: Migration_Status__c
  external_id_field: External_Ref__c
  status_field: Status__c
  run_id_field: Last_Run_Id__c
  records_total_field: Records_Total__c
  records_failed_field: Records_Failed__c
  message_field: Message__c
# The tracker record of 'sfmigrate run --all-tables' (a plan of every table below).
plan_status_ref: DEMO_PLAN
tables:
  PRODUCTS:
    source: demo_erp
    table: PRODUCTS
    order_by: PRODUCT_ID
    sf_object: Product2
    external_id_field: External_Id__c
    source_time_zone: Europe/Berlin
    fields:
      PRODUCT_ID: External_Id__c
      NAME: Name
      PRODUCT_CODE: ProductCode
      DESCRIPTION: Description
      FAMILY: Family
      ACTIVE: IsActive
      LIST_PRICE: Price__c
      LAUNCH_DATE: Launch_Date__c
      LAST_CHANGED: Last_Changed__c
  PRICES:
    source: demo_erp
    # A query, not a table: the key is built in SQL, and the product is
    # referenced by its external id through the relationship column.
    query: >-
      SELECT 'PP-' || printf('%08d', p.PRICE_ID) AS PRICE_KEY, p.PRODUCT_ID, p.PRICE_LIST, p.CURRENCY,
             p.UNIT_PRICE, p.MIN_QTY, p.VALID_FROM, p.VALID_TO, p.ACTIVE, p.UPDATED_AT
      FROM PRICES p
    order_by: PRICE_KEY
    sf_object: Product_Price__c
    external_id_field: External_Id__c
    source_time_zone: Europe/Berlin
    fields:
      PRICE_KEY: External_Id__c
      PRODUCT_ID: Product__r.External_Id__c
      PRICE_LIST: Price_List__c
      CURRENCY: Currency__c
      UNIT_PRICE: Unit_Price__c
      MIN_QTY: Min_Quantity__c
      VALID_FROM: Valid_From__c
      VALID_TO: Valid_To__c
      ACTIVE: Is_Active__c
      UPDATED_AT: Updated_At__c
  ACCOUNTS:
    source: demo_erp
    table: ACCOUNTS
    order_by: ACCOUNT_ID
    sf_object: Account
    external_id_field: External_Id__c
    fields:
      ACCOUNT_ID: External_Id__c
      NAME: Name
      # A parent account is a row of this same table, and the primary contact
      # a row of CONTACTS, whose rows point back here: the plan loads the
      # accounts without these two, then the contacts, then sets both.
      PARENT_ID: Parent.External_Id__c
      PRIMARY_CONTACT_ID: Primary_Contact__r.External_Id__c
  CONTACTS:
    source: demo_erp
    table: CONTACTS
    order_by: CONTACT_ID
    sf_object: Contact
    external_id_field: External_Id__c
    fields:
      CONTACT_ID: External_Id__c
      FIRST_NAME: FirstName
      LAST_NAME: LastName
      EMAIL: Email
      ACCOUNT_ID: Account.External_Id__c
`
}

const schema = `
CREATE TABLE ACCOUNTS (
  ACCOUNT_ID         TEXT PRIMARY KEY,
  NAME               TEXT NOT NULL,
  PARENT_ID          TEXT,
  PRIMARY_CONTACT_ID TEXT
);
CREATE TABLE CONTACTS (
  CONTACT_ID TEXT PRIMARY KEY,
  FIRST_NAME TEXT,
  LAST_NAME  TEXT NOT NULL,
  EMAIL      TEXT,
  ACCOUNT_ID TEXT
);
CREATE TABLE PRODUCTS (
  PRODUCT_ID   TEXT PRIMARY KEY,
  NAME         TEXT NOT NULL,
  PRODUCT_CODE TEXT,
  DESCRIPTION  TEXT,
  FAMILY       TEXT,
  ACTIVE       BOOLEAN,
  LIST_PRICE   NUMERIC(18,2),
  LAUNCH_DATE  DATE,
  LAST_CHANGED TIMESTAMP
);
CREATE TABLE PRICES (
  PRICE_ID   INTEGER PRIMARY KEY,
  PRODUCT_ID TEXT NOT NULL,
  PRICE_LIST TEXT NOT NULL,
  CURRENCY   TEXT NOT NULL,
  UNIT_PRICE TEXT, -- exact decimal as text: SQLite's NUMERIC affinity keeps only 15 digits
  MIN_QTY    INTEGER,
  VALID_FROM DATE,
  VALID_TO   DATE,
  ACTIVE     BOOLEAN,
  UPDATED_AT TIMESTAMP
);
`

// Generate writes a new sample database at path (an existing file is
// replaced only once the new one is complete).
func Generate(ctx context.Context, path string, opts Options) (st Stats, err error) {
	if opts.Products < 1 || opts.Prices < 0 || opts.OrphanPrices < 0 || opts.Accounts < 0 || opts.Contacts < 0 {
		return st, fmt.Errorf("demo sample: need at least 1 product and no negative counts (got %d products, %d prices, %d orphans)",
			opts.Products, opts.Prices, opts.OrphanPrices)
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("remove old %s: %w", tmp, err)
	}
	// A URI filename: '?', '#' and '%' in the path must be escaped, or
	// SQLite reads them as the start of the query, the fragment or an escape.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: tmp}).EscapedPath()+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)")
	if err != nil {
		return st, fmt.Errorf("create demo database: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close demo database: %w", cerr)
		}
		if err != nil {
			os.Remove(tmp) // best effort: a half-written sample is useless
		}
	}()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return st, fmt.Errorf("create demo schema: %w", err)
	}
	g := &gen{r: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5f3759df))}
	if err := g.products(ctx, db, opts.Products); err != nil {
		return st, err
	}
	if err := g.prices(ctx, db, opts.Products, opts.Prices, opts.OrphanPrices); err != nil {
		return st, err
	}
	withParent, withPrimary, err := g.accounts(ctx, db, opts.Accounts, opts.Contacts)
	if err != nil {
		return st, err
	}
	if err := db.Close(); err != nil {
		return st, fmt.Errorf("close demo database: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return st, fmt.Errorf("move demo database into place: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return st, err
	}
	return Stats{Products: opts.Products, Prices: opts.Prices + opts.OrphanPrices, Orphans: opts.OrphanPrices,
		Accounts: opts.Accounts, Contacts: opts.Contacts, WithParent: withParent, WithPrimary: withPrimary, Bytes: fi.Size()}, nil
}

type gen struct{ r *rand.Rand }

// ProductKey is the external id of product n (1-based).
func ProductKey(n int) string { return fmt.Sprintf("P-%06d", n) }

// AccountKey is the external id of account n (1-based).
func AccountKey(n int) string { return fmt.Sprintf("A-%06d", n) }

// ContactKey is the external id of contact n (1-based).
func ContactKey(n int) string { return fmt.Sprintf("C-%06d", n) }

// PriceKey is the external id of price n (1-based), as the PRICES query builds it.
func PriceKey(n int) string { return fmt.Sprintf("PP-%08d", n) }

var (
	families = []string{"Hardware", "Software", "Services", "Spare Parts"}
	nouns    = []string{"Bolt", "Washer", "Bearing", "Valve", "Sensor", "Pump", "Gasket", "Cable", "Switch", "Licence", "Support plan", "Filter"}
	// Names that break naive CSV writers, encoders and spreadsheets.
	trickyNames = []string{
		`Bolt "M8" 40mm, zinc plated`,
		"Washer, flat; DIN 125",
		"Schraube mit Überlänge – Ø 12 mm",
		"螺丝 M6 不锈钢",
		"Ключ гаечный 17×19",
		"مضخة مياه",
		"Spanner 🔧 set (12 pcs)",
		"Line one\nline two",
		"  leading and trailing spaces  ",
		"=SUM(A1:A9)",
		"O'Brien's \"special\" valve",
		`C:\parts\bin\7`,
		"Tab\tseparated",
		"Crème brûlée mould, 10 cm",
		"e\u0301 combining accent",
	}
	priceLists = []string{"STANDARD", "WHOLESALE", "EXPORT", "PROMO 2026", "Händler/DACH"}
	currencies = []string{"EUR", "USD", "GBP", "CHF", "JPY"}
	// Local wall-clock timestamps (Europe/Berlin) that are easy to get wrong:
	// inside the spring-forward gap, inside the autumn overlap, leap days,
	// year ends and fractions of a second.
	trickyTimes = []string{
		"2026-03-29 02:30:00", // does not exist in Berlin (clocks jump 02:00 -> 03:00)
		"2026-10-25 02:30:00", // exists twice in Berlin
		"2024-02-29 23:59:59",
		"2025-12-31 23:59:59.999",
		"2000-01-01 00:00:00",
		"2026-06-30 12:00:00.123",
	}
	trickyDates = []string{"2024-02-29", "2000-02-29", "1999-12-31", "2026-03-29", "2026-10-25", "1970-01-01"}
)

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) timestamp() string {
	if g.r.IntN(50) == 0 {
		return g.pick(trickyTimes)
	}
	t := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.Int64N(int64(11 * 365 * 24 * time.Hour))))
	return t.Format("2006-01-02 15:04:05")
}

func (g *gen) date() string {
	if g.r.IntN(40) == 0 {
		return g.pick(trickyDates)
	}
	return time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, g.r.IntN(6000)).Format("2006-01-02")
}

func (g *gen) description(n int) any {
	switch g.r.IntN(20) {
	case 0:
		return nil
	case 1:
		// Long text near the 4,000-character limit of Product2.Description.
		var b strings.Builder
		for b.Len() < 3800 {
			fmt.Fprintf(&b, "Paragraph %d: technical notes, \"quoted\", with commas, and a line break.\n", b.Len())
		}
		return b.String()
	case 2:
		return "Mounting:\r\n1. Clean surface\r\n2. Apply \"Loctite 243\", 0.5 ml\r\n3. Torque 25 N·m"
	case 3:
		return ""
	}
	return fmt.Sprintf("%s for %s applications, item %d", g.pick(nouns), g.pick([]string{"industrial", "marine", "food-grade", "outdoor"}), n)
}

func nullable[T any](g *gen, oneIn int, v T) any {
	if g.r.IntN(oneIn) == 0 {
		return nil
	}
	return v
}

func (g *gen) products(ctx context.Context, db *sql.DB, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO PRODUCTS VALUES (?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("prepare products: %w", err)
	}
	defer stmt.Close()
	for i := 1; i <= n; i++ {
		if i%10000 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		name := fmt.Sprintf("%s %s-%d", g.pick(nouns), g.pick([]string{"M4", "M6", "M8", "XL", "Pro", "Basic"}), i)
		if g.r.IntN(25) == 0 {
			name = g.pick(trickyNames)
		}
		var price any
		switch g.r.IntN(30) {
		case 0:
			price = nil
		case 1:
			price = "999999999999.99" // the most a NUMERIC column keeps exactly (15 digits)
		case 2:
			price = "0.01"
		default:
			price = fmt.Sprintf("%d.%02d", g.r.IntN(100000), g.r.IntN(100))
		}
		var active any = g.r.IntN(5) != 0
		if g.r.IntN(30) == 0 {
			active = nil
		}
		if _, err := stmt.ExecContext(ctx, ProductKey(i), name,
			nullable(g, 10, fmt.Sprintf("PC-%05d-%s", i, g.pick([]string{"A", "B", "ß", "Ω"}))),
			g.description(i), nullable(g, 15, g.pick(families)), active, price,
			nullable(g, 8, g.date()), g.timestamp()); err != nil {
			return fmt.Errorf("insert product %d: %w", i, err)
		}
	}
	return tx.Commit()
}

func (g *gen) prices(ctx context.Context, db *sql.DB, products, n, orphans int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO PRICES VALUES (?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("prepare prices: %w", err)
	}
	defer stmt.Close()
	for i := 1; i <= n+orphans; i++ {
		if i%10000 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		product := ProductKey(1 + (i-1)%products)
		if i > n {
			product = fmt.Sprintf("P-GONE-%d", i) // deleted from the ERP, still referenced
		}
		var unit any
		switch g.r.IntN(40) {
		case 0:
			unit = "12345678901234.5678" // 18 significant digits: a float64 would round it
		case 1:
			unit = "0.0001"
		case 2:
			unit = nil
		default:
			unit = fmt.Sprintf("%d.%04d", g.r.IntN(5000), g.r.IntN(10000))
		}
		from := g.date()
		var to any
		if g.r.IntN(3) != 0 {
			t, _ := time.Parse("2006-01-02", from) // from is always a valid date
			to = t.AddDate(0, g.r.IntN(36)+1, 0).Format("2006-01-02")
		}
		var minQty any = 1 + g.r.IntN(100)*10
		if g.r.IntN(20) == 0 {
			minQty = nil
		}
		if _, err := stmt.ExecContext(ctx, i, product, g.pick(priceLists), g.pick(currencies), unit, minQty,
			from, to, g.r.IntN(6) != 0, g.timestamp()); err != nil {
			return fmt.Errorf("insert price %d: %w", i, err)
		}
	}
	return tx.Commit()
}

// accounts writes ACCOUNTS and CONTACTS. A parent may come later in the
// table than its child (so no single pass can resolve every parent), and a
// primary contact points at a contact that points back at the account.
func (g *gen) accounts(ctx context.Context, db *sql.DB, accounts, contacts int) (withParent, withPrimary int, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback() // no-op after Commit
	acc, err := tx.PrepareContext(ctx, `INSERT INTO ACCOUNTS VALUES (?,?,?,?)`)
	if err != nil {
		return 0, 0, fmt.Errorf("prepare accounts: %w", err)
	}
	defer acc.Close()
	for i := 1; i <= accounts; i++ {
		var parent, primary any
		if i > 1 && i%3 == 0 {
			j := 1 + g.r.IntN(accounts)
			if j == i {
				j = 1
			}
			parent, withParent = AccountKey(j), withParent+1
		}
		if i <= contacts && i%2 == 0 {
			primary, withPrimary = ContactKey(i), withPrimary+1 // contact i belongs to account i
		}
		name := fmt.Sprintf("%s %s GmbH %d", g.pick(nouns), g.pick([]string{"Nord", "Süd", "Ost", "West"}), i)
		if g.r.IntN(30) == 0 {
			name = g.pick(trickyNames)
		}
		if _, err := acc.ExecContext(ctx, AccountKey(i), name, parent, primary); err != nil {
			return 0, 0, fmt.Errorf("insert account %d: %w", i, err)
		}
	}
	con, err := tx.PrepareContext(ctx, `INSERT INTO CONTACTS VALUES (?,?,?,?,?)`)
	if err != nil {
		return 0, 0, fmt.Errorf("prepare contacts: %w", err)
	}
	defer con.Close()
	first := []string{"Anna", "Jürgen", "Zoë", "Łukasz", "Mei", "O'Neil", "José"}
	last := []string{"Müller", "Smith", "García", "Nguyễn", "Dubois", "Ivanova", "O'Brien, Jr."}
	for i := 1; i <= contacts; i++ {
		var account any
		if accounts > 0 {
			account = AccountKey(1 + (i-1)%accounts)
		}
		if _, err := con.ExecContext(ctx, ContactKey(i), nullable(g, 12, g.pick(first)), g.pick(last),
			nullable(g, 5, fmt.Sprintf("contact%d@example.com", i)), account); err != nil {
			return 0, 0, fmt.Errorf("insert contact %d: %w", i, err)
		}
	}
	return withParent, withPrimary, tx.Commit()
}
