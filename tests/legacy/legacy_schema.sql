-- The Docker collector's database, as its schema files declare it (smartiesss/datadownloader, commit
-- 377f9a6: schema.sql, schema/000-010, NAS_COMPLETE_SCHEMA.sql), for the import tests and the bench.
-- Types as declared there: NUMERIC(p,s) / DECIMAL(p,s), varchar, jsonb; their keys; no trade_seq.
-- btc_option_quotes is the later shape (greeks added, then widened); the depth tables have no key.

CREATE TABLE eth_option_quotes (
    timestamp          timestamptz NOT NULL,
    instrument         text        NOT NULL,
    best_bid_price     numeric(18,8),
    best_bid_amount    numeric(18,8),
    best_ask_price     numeric(18,8),
    best_ask_amount    numeric(18,8),
    underlying_price   numeric(18,8),
    mark_price         numeric(18,8),
    delta              numeric(8,6),
    gamma              numeric(8,6),
    theta              numeric(8,6),
    vega               numeric(8,6),
    rho                numeric(8,6),
    implied_volatility numeric(8,4),
    bid_iv             numeric(8,4),
    ask_iv             numeric(8,4),
    mark_iv            numeric(8,4),
    open_interest      numeric(18,8),
    last_price         numeric(18,8),
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE btc_option_quotes (
    timestamp        timestamptz NOT NULL,
    instrument       varchar(50) NOT NULL,
    best_bid_price   decimal(20,10),
    best_bid_amount  decimal(20,8),
    best_ask_price   decimal(20,10),
    best_ask_amount  decimal(20,8),
    mark_price       decimal(20,10),
    underlying_price decimal(20,10),
    open_interest    decimal(20,8),
    volume_24h       decimal(20,8),
    delta            numeric(12,6),
    gamma            numeric(12,6),
    theta            numeric(12,6),
    vega             numeric(12,6),
    rho              numeric(12,6),
    implied_volatility numeric(12,4),
    bid_iv           numeric(12,4),
    ask_iv           numeric(12,4),
    mark_iv          numeric(12,4),
    last_price       numeric(18,8),
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE eth_option_trades (
    timestamp   timestamptz NOT NULL,
    instrument  text        NOT NULL,
    trade_id    text        NOT NULL,
    price       numeric(18,8),
    amount      numeric(18,8),
    direction   text,
    iv          numeric(8,4),
    index_price numeric(18,8),
    PRIMARY KEY (timestamp, instrument, trade_id)
);

CREATE TABLE btc_option_trades (
    timestamp   timestamptz NOT NULL,
    trade_id    varchar(50) NOT NULL,
    instrument  varchar(50) NOT NULL,
    price       decimal(20,10),
    amount      decimal(20,8),
    direction   varchar(10),
    iv          numeric(8,4),
    index_price numeric(18,8),
    PRIMARY KEY (timestamp, trade_id, instrument)
);

CREATE TABLE eth_option_orderbook_depth (
    timestamp        timestamptz NOT NULL,
    instrument       varchar(50) NOT NULL,
    bids             jsonb,
    asks             jsonb,
    mark_price       decimal(20,10),
    underlying_price decimal(20,10),
    open_interest    decimal(20,8),
    volume_24h       decimal(20,8)
);
CREATE INDEX eth_option_orderbook_depth_instrument_idx ON eth_option_orderbook_depth (instrument, timestamp);

CREATE TABLE btc_option_orderbook_depth (LIKE eth_option_orderbook_depth);
CREATE INDEX btc_option_orderbook_depth_instrument_idx ON btc_option_orderbook_depth (instrument, timestamp);

CREATE TABLE perpetuals_quotes (
    timestamp       timestamptz NOT NULL,
    instrument      text        NOT NULL,
    best_bid_price  numeric(18,8),
    best_bid_amount numeric(18,8),
    best_ask_price  numeric(18,8),
    best_ask_amount numeric(18,8),
    mark_price      numeric(18,8),
    index_price     numeric(18,8),
    funding_rate    numeric(10,8),
    open_interest   numeric(18,8),
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE perpetuals_trades (
    timestamp      timestamptz NOT NULL,
    trade_id       text        NOT NULL,
    instrument     text        NOT NULL,
    price          numeric(18,8),
    amount         numeric(18,8),
    direction      text,
    tick_direction int,
    liquidation    boolean,
    PRIMARY KEY (trade_id, instrument)
);

CREATE TABLE perpetuals_orderbook_depth (
    timestamp     timestamptz NOT NULL,
    instrument    text        NOT NULL,
    bids          jsonb,
    asks          jsonb,
    mark_price    numeric(18,8),
    index_price   numeric(18,8),
    funding_rate  numeric(10,8),
    open_interest numeric(18,8),
    volume_24h    numeric(18,8),
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE perpetuals_ohlcv (
    timestamp  timestamptz   NOT NULL,
    instrument text          NOT NULL,
    open       numeric(18,8) NOT NULL,
    high       numeric(18,8) NOT NULL,
    low        numeric(18,8) NOT NULL,
    close      numeric(18,8) NOT NULL,
    volume     numeric(18,8) NOT NULL,
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE futures_ohlcv (
    timestamp   timestamptz   NOT NULL,
    instrument  text          NOT NULL,
    expiry_date date,
    open        numeric(18,8) NOT NULL,
    high        numeric(18,8) NOT NULL,
    low         numeric(18,8) NOT NULL,
    close       numeric(18,8) NOT NULL,
    volume      numeric(18,8) NOT NULL,
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE options_ohlcv (
    timestamp          timestamptz   NOT NULL,
    instrument         text          NOT NULL,
    strike             numeric(18,8),
    expiry_date        date,
    option_type        text,
    open               numeric(18,8),
    high               numeric(18,8),
    low                numeric(18,8),
    close              numeric(18,8),
    volume             numeric(18,8),
    implied_volatility numeric(8,6),
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE options_greeks (
    timestamp  timestamptz  NOT NULL,
    instrument text         NOT NULL,
    delta      numeric(8,6) NOT NULL,
    gamma      numeric(8,6) NOT NULL,
    vega       numeric(8,6) NOT NULL,
    theta      numeric(8,6) NOT NULL,
    rho        numeric(8,6),
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE funding_rates (
    timestamp    timestamptz NOT NULL,
    instrument   text        NOT NULL,
    funding_rate numeric(12,10),
    PRIMARY KEY (timestamp, instrument)
);

CREATE TABLE index_prices (
    timestamp timestamptz   NOT NULL,
    currency  text          NOT NULL,
    price     numeric(18,8) NOT NULL,
    PRIMARY KEY (timestamp, currency)
);

-- their bookkeeping (another meaning than ours)
CREATE TABLE data_gaps (
    gap_id       serial PRIMARY KEY,
    instrument   text,
    start_time   timestamptz,
    end_time     timestamptz,
    duration_sec integer,
    cause        text,
    created_at   timestamptz DEFAULT now()
);

CREATE TABLE collector_status (
    timestamp            timestamptz NOT NULL,
    collector_id         text,
    status               text,
    ticks_per_sec        numeric,
    active_subscriptions integer,
    buffer_usage_pct     numeric,
    last_error           text
);

CREATE TABLE instrument_metadata (
    instrument_name text PRIMARY KEY,
    currency        text,
    instrument_type text,
    strike_price    numeric,
    expiry_date     timestamptz,
    option_type     text,
    is_active       boolean,
    listed_at       timestamptz,
    expired_at      timestamptz,
    last_seen_at    timestamptz
);

CREATE TABLE lifecycle_events (
    event_time      timestamptz NOT NULL DEFAULT now(),
    id              serial,
    event_type      text,
    instrument_name text,
    currency        text,
    collector_id    text,
    details         jsonb,
    success         boolean,
    error_message   text
);
