-- 0001: every relation the collectors write, as plain PostgreSQL tables.
-- Column order = the record types' field order (collector/records.py) = COPY order.
-- Prices, sizes, IVs and greeks are double precision, NULL when Deribit sends none.
-- Every time-series table has a natural unique key, so re-running a job, replaying a spool or
-- backfilling never duplicates a row; writers insert with ON CONFLICT DO NOTHING.
-- TimescaleDB (hypertables, compression, continuous aggregates) is layered on in 0003 when available.

CREATE TABLE IF NOT EXISTS index_prices (
    timestamp                timestamptz      NOT NULL,
    index_name               text             NOT NULL,
    price                    double precision NOT NULL,
    estimated_delivery_price double precision,
    CONSTRAINT index_prices_key UNIQUE (index_name, timestamp)
);
CREATE INDEX IF NOT EXISTS index_prices_timestamp_idx ON index_prices (timestamp DESC);

CREATE TABLE IF NOT EXISTS perpetuals_ohlcv (
    timestamp  timestamptz      NOT NULL,   -- bar start (1-minute bars)
    instrument text             NOT NULL,
    currency   text             NOT NULL,
    open       double precision,
    high       double precision,
    low        double precision,
    close      double precision,
    volume     double precision,            -- base currency
    cost       double precision,            -- quote currency (USD)
    CONSTRAINT perpetuals_ohlcv_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS perpetuals_ohlcv_timestamp_idx ON perpetuals_ohlcv (timestamp DESC);

CREATE TABLE IF NOT EXISTS futures_ohlcv (
    timestamp  timestamptz      NOT NULL,
    instrument text             NOT NULL,
    currency   text             NOT NULL,
    open       double precision,
    high       double precision,
    low        double precision,
    close      double precision,
    volume     double precision,
    cost       double precision,
    CONSTRAINT futures_ohlcv_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS futures_ohlcv_timestamp_idx ON futures_ohlcv (timestamp DESC);

CREATE TABLE IF NOT EXISTS options_ohlcv (
    timestamp        timestamptz      NOT NULL,  -- the minute the row describes
    instrument       text             NOT NULL,
    currency         text             NOT NULL,
    open             double precision,            -- real OHLCV where the option traded, else NULL
    high             double precision,
    low              double precision,
    close            double precision,
    volume           double precision,
    bid_price        double precision,
    ask_price        double precision,
    mid_price        double precision,
    mark_price       double precision,
    mark_iv          double precision,            -- percent, as Deribit sends it
    bid_iv           double precision,
    ask_iv           double precision,
    underlying_price double precision,
    underlying_index text,
    index_price      double precision,
    volume_24h       double precision,
    open_interest    double precision,
    CONSTRAINT options_ohlcv_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS options_ohlcv_timestamp_idx ON options_ohlcv (timestamp DESC);

CREATE TABLE IF NOT EXISTS options_greeks (
    timestamp        timestamptz      NOT NULL,
    instrument       text             NOT NULL,
    currency         text             NOT NULL,
    delta            double precision,
    gamma            double precision,
    vega             double precision,
    theta            double precision,
    rho              double precision,
    mark_iv          double precision,
    bid_iv           double precision,
    ask_iv           double precision,
    mark_price       double precision,
    underlying_price double precision,
    index_price      double precision,
    open_interest    double precision,
    CONSTRAINT options_greeks_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS options_greeks_timestamp_idx ON options_greeks (timestamp DESC);

CREATE TABLE IF NOT EXISTS funding_rates (
    timestamp        timestamptz      NOT NULL,
    instrument       text             NOT NULL,
    currency         text             NOT NULL,
    interest_1h      double precision,
    interest_8h      double precision,
    index_price      double precision,
    prev_index_price double precision,
    CONSTRAINT funding_rates_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS funding_rates_timestamp_idx ON funding_rates (timestamp DESC);

-- Option quotes of every currency in one table; read through the views {cur}_option_quotes.
CREATE TABLE IF NOT EXISTS option_quotes (
    timestamp        timestamptz      NOT NULL,   -- exchange time of the change
    instrument       text             NOT NULL,
    currency         text             NOT NULL,
    best_bid_price   double precision,
    best_bid_amount  double precision,
    best_ask_price   double precision,
    best_ask_amount  double precision,
    mark_price       double precision,
    mark_iv          double precision,
    bid_iv           double precision,
    ask_iv           double precision,
    underlying_price double precision,
    underlying_index text,
    index_price      double precision,
    open_interest    double precision,
    CONSTRAINT option_quotes_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS option_quotes_currency_timestamp_idx ON option_quotes (currency, timestamp DESC);

CREATE TABLE IF NOT EXISTS option_trades (
    timestamp      timestamptz      NOT NULL,
    instrument     text             NOT NULL,
    currency       text             NOT NULL,
    trade_seq      bigint           NOT NULL,   -- contiguous per instrument
    trade_id       text             NOT NULL,   -- unique per currency, e.g. 'ETH-2696055'
    price          double precision NOT NULL,
    amount         double precision NOT NULL,
    direction      text             NOT NULL,   -- taker side: buy | sell
    contracts      double precision,
    tick_direction smallint,
    index_price    double precision,
    mark_price     double precision,
    iv             double precision,
    liquidation    text,
    block_trade_id text,
    combo_id       text,
    CONSTRAINT option_trades_key UNIQUE (instrument, trade_seq, timestamp)
);
CREATE INDEX IF NOT EXISTS option_trades_currency_timestamp_idx ON option_trades (currency, timestamp DESC);

-- Top-N book snapshots: levels as parallel arrays, best level first.
CREATE TABLE IF NOT EXISTS perpetuals_orderbook_depth (
    timestamp      timestamptz        NOT NULL,
    instrument     text               NOT NULL,
    currency       text               NOT NULL,
    change_id      bigint,
    depth          integer            NOT NULL,
    bid_prices     double precision[] NOT NULL,
    bid_amounts    double precision[] NOT NULL,
    ask_prices     double precision[] NOT NULL,
    ask_amounts    double precision[] NOT NULL,
    best_bid_price double precision,
    best_ask_price double precision,
    mark_price     double precision,
    index_price    double precision,
    CONSTRAINT perpetuals_orderbook_depth_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS perpetuals_orderbook_depth_timestamp_idx ON perpetuals_orderbook_depth (timestamp DESC);

CREATE TABLE IF NOT EXISTS option_orderbook_depth (
    timestamp      timestamptz        NOT NULL,
    instrument     text               NOT NULL,
    currency       text               NOT NULL,
    change_id      bigint,
    depth          integer            NOT NULL,
    bid_prices     double precision[] NOT NULL,
    bid_amounts    double precision[] NOT NULL,
    ask_prices     double precision[] NOT NULL,
    ask_amounts    double precision[] NOT NULL,
    best_bid_price double precision,
    best_ask_price double precision,
    mark_price     double precision,
    index_price    double precision,
    CONSTRAINT option_orderbook_depth_key UNIQUE (instrument, timestamp)
);
CREATE INDEX IF NOT EXISTS option_orderbook_depth_currency_timestamp_idx ON option_orderbook_depth (currency, timestamp DESC);

-- Every detected hole. [gap_start, gap_end] is what is missing; timestamp is when it was detected.
CREATE TABLE IF NOT EXISTS data_gaps (
    timestamp     timestamptz NOT NULL,
    relation      text        NOT NULL,   -- the user's relation name, e.g. eth_option_trades
    instrument    text        NOT NULL DEFAULT '',  -- '' = the whole relation / connection
    currency      text        NOT NULL DEFAULT '',
    gap_start     timestamptz NOT NULL,
    gap_end       timestamptz NOT NULL,
    cause         text        NOT NULL,   -- disconnect, trade_seq_jump, book_change_gap, writer_overflow, ...
    recoverable   boolean     NOT NULL,
    backfilled_at timestamptz,
    from_seq      bigint,
    to_seq        bigint,
    missing_count bigint,
    details       text,
    CONSTRAINT data_gaps_key UNIQUE (relation, instrument, gap_start, cause)
);
CREATE INDEX IF NOT EXISTS data_gaps_timestamp_idx ON data_gaps (timestamp DESC);

-- One row per running job (e.g. 'ws:ETH', 'rest'), upserted every few seconds.
CREATE TABLE IF NOT EXISTS collector_status (
    job             text        PRIMARY KEY,
    timestamp       timestamptz NOT NULL,   -- last heartbeat of this row
    instrument      text        NOT NULL DEFAULT '',  -- for the "timestamp + instrument" convention
    state           text        NOT NULL,   -- starting, running, degraded, overflow, stopped, failed
    host            text,
    pid             integer,
    started_at      timestamptz,
    last_message_at timestamptz,
    last_write_at   timestamptz,
    rows_written    bigint      NOT NULL DEFAULT 0,
    rows_spooled    bigint      NOT NULL DEFAULT 0,
    rows_dropped    bigint      NOT NULL DEFAULT 0,
    errors          bigint      NOT NULL DEFAULT 0,
    queue_rows      bigint      NOT NULL DEFAULT 0,
    spool_bytes     bigint      NOT NULL DEFAULT 0,
    details         jsonb
);
