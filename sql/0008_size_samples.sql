-- Size history for `collector db status`: growth per day over the last 7 days and the days left until
-- the disk is full. Each monitor run (`collector db status --monitor`, and `collector run-all`'s health
-- check) adds one row: the database's size and each time-series table's, in bytes.
-- About 300 rows a day at the monitor's 5-minute cadence, a few hundred bytes each.
CREATE TABLE IF NOT EXISTS size_samples (
    timestamp      timestamptz NOT NULL DEFAULT now(),
    database_bytes bigint      NOT NULL,          -- pg_database_size(current_database())
    relations      jsonb       NOT NULL DEFAULT '{}'::jsonb,   -- {"btc_option_quotes": 123456, ...}
    CONSTRAINT size_samples_key UNIQUE (timestamp)
);
