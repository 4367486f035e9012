-- 12 mixed columns, @ROWS@ rows: the benchmark table for SQLite (run.sh).
-- Every 10th name has a comma and quotes, every 50th description a line
-- break, every 3rd note is NULL.
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE products (
  id          INTEGER PRIMARY KEY,
  ext_id      TEXT NOT NULL,
  name        TEXT NOT NULL,
  description TEXT,
  price       NUMERIC,
  quantity    INTEGER,
  active      BOOLEAN,
  launch_date DATE,
  updated_at  DATETIME,
  ratio       REAL,
  category    TEXT,
  notes       TEXT
);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @ROWS@)
INSERT INTO products
SELECT i,
  'EXT-' || printf('%08d', i),
  'Product ' || i || CASE WHEN i % 10 = 0 THEN ', "special"' ELSE '' END,
  'Description of product ' || i || ' with some longer text to make the row realistic'
    || CASE WHEN i % 50 = 0 THEN char(10) || 'second line' ELSE '' END,
  round((i % 100000) / 100.0 + 0.99, 2),
  i % 1000,
  i % 2,
  date('2020-01-01', '+' || (i % 2000) || ' days'),
  datetime('2020-01-01 00:00:00', '+' || (i * 37) || ' seconds'),
  (i % 997) / 7.0,
  CASE i % 4 WHEN 0 THEN 'Hardware' WHEN 1 THEN 'Software' WHEN 2 THEN 'Services' ELSE 'Spare Parts' END,
  CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END
FROM s;
