-- The same 12 mixed columns and values as sqlite.sql, for PostgreSQL (run.sh).
-- The table name is unusual on purpose: run.sh may be pointed at a real database.
DROP TABLE IF EXISTS sfm_bench_products;
CREATE TABLE sfm_bench_products (
  id          bigint PRIMARY KEY,
  ext_id      text NOT NULL,
  name        text NOT NULL,
  description text,
  price       numeric(12,2),
  quantity    integer,
  active      boolean,
  launch_date date,
  updated_at  timestamp,
  ratio       double precision,
  category    text,
  notes       text
);
INSERT INTO sfm_bench_products
SELECT i,
  'EXT-' || lpad(i::text, 8, '0'),
  'Product ' || i || CASE WHEN i % 10 = 0 THEN ', "special"' ELSE '' END,
  'Description of product ' || i || ' with some longer text to make the row realistic'
    || CASE WHEN i % 50 = 0 THEN E'\nsecond line' ELSE '' END,
  round((i % 100000) / 100.0 + 0.99, 2),
  i % 1000,
  i % 2 = 1,
  date '2020-01-01' + (i % 2000),
  timestamp '2020-01-01' + make_interval(secs => i * 37),
  (i % 997) / 7.0,
  CASE i % 4 WHEN 0 THEN 'Hardware' WHEN 1 THEN 'Software' WHEN 2 THEN 'Services' ELSE 'Spare Parts' END,
  CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END
FROM generate_series(1, @ROWS@) i;
VACUUM ANALYZE sfm_bench_products;
