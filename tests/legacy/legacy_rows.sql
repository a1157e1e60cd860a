-- Rows in the Docker collector's layout that exercise each quirk the import handles (test_import.py
-- checks what becomes of each). All on 2025-01-01 UTC.

-- 300 ticks of 3 ETH options, one every 100 ms; every other tick of ETH-27JUN25-3000-C repeats the
-- previous one unchanged (their collector stored every ticker); NUMERIC with 8 decimals
INSERT INTO eth_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount,
    underlying_price, mark_price, delta, gamma, theta, vega, rho, implied_volatility, bid_iv, ask_iv, mark_iv,
    open_interest, last_price)
SELECT '2025-01-01 00:00:00+00'::timestamptz + g * INTERVAL '100 milliseconds',
       'ETH-27JUN25-' || (2900 + (g % 3) * 100) || '-C',
       0.01234567 + (g / 6) * 0.0001, 12.5, 0.01334567, 7, 3301.25, 0.0128, 0.512345, 0.001234, -1.234567, 2.345678,
       0.123456, 65.4321, 60.1, 70.2, 65.4321, 1234.5, 0.0127
FROM generate_series(0, 299) g;

-- BTC quotes in the later btc_option_quotes shape: DECIMAL(20,10), volume_24h, mark_iv missing on one
INSERT INTO btc_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount,
    mark_price, underlying_price, open_interest, volume_24h, delta, implied_volatility, mark_iv)
VALUES ('2025-01-01 00:00:00.5+00', 'BTC-27JUN25-100000-C', 0.0512345678, 1.5, 0.0522345678, 2.25, 0.0517, 95123.4567890123,
        321.5, 12.75, 0.4567, 55.5, 55.5),
       ('2025-01-01 00:00:01.5+00', 'BTC-27JUN25-100000-C', 0.0512345678, 1.5, 0.0522345678, 2.25, 0.0517, 95123.4567890123,
        321.5, 12.75, 0.4567, 56.25, NULL);

-- trades: no trade_seq; one with a trade_id without a number, one without a price, and one (…2696057)
-- that the live collector already stored (the test puts it in ours first, with its real trade_seq)
INSERT INTO eth_option_trades VALUES
    ('2025-01-01 00:00:01+00', 'ETH-27JUN25-3000-C', 'ETH-2696055', 0.0125, 3, 'buy', 65.5, 3301.5),
    ('2025-01-01 00:00:02+00', 'ETH-27JUN25-3000-C', 'ETH-2696056', 0.013, 1.5, 'sell', 66.0, 3302.0),
    ('2025-01-01 00:00:03+00', 'ETH-27JUN25-3000-C', 'ETH-2696057', 0.0131, 2, 'buy', 66.1, 3302.5),
    ('2025-01-01 00:00:04+00', 'ETH-27JUN25-3000-C', 'block-trade', 0.0131, 2, 'buy', 66.1, 3302.5),
    ('2025-01-01 00:00:05+00', 'ETH-27JUN25-2900-C', 'ETH-2696058', NULL, 2, 'buy', 66.1, 3302.5);
INSERT INTO btc_option_trades VALUES
    ('2025-01-01 00:00:01+00', 'BTC-48000001', 'BTC-27JUN25-100000-C', 0.0515, 0.1, 'sell', 55.1, 95100.5);

-- depth: JSON levels; the same snapshot twice (their depth has no key); one side empty; a malformed one
INSERT INTO eth_option_orderbook_depth VALUES
    ('2025-01-01 00:05:00+00', 'ETH-27JUN25-3000-C', '[[0.0125, 10], [0.012, 25.5], [0.0115, 3]]', '[[0.0135, 4], [0.014, 8]]',
     0.0128, 3301.25, 1234.5, 56.5),
    ('2025-01-01 00:05:00+00', 'ETH-27JUN25-3000-C', '[[0.0125, 10], [0.012, 25.5], [0.0115, 3]]', '[[0.0135, 4], [0.014, 8]]',
     0.0128, 3301.25, 1234.5, 56.5),
    ('2025-01-01 00:05:00+00', 'ETH-27JUN25-2900-C', '[[0.02, 1]]', '[]', 0.021, 3301.25, 10, 1),
    ('2025-01-01 00:10:00+00', 'ETH-27JUN25-3000-C', '"not a book"', '[[0.0135, 4]]', 0.0128, 3301.25, 1234.5, 56.5);

-- a currency our database does not have yet
CREATE TABLE sol_option_quotes (LIKE eth_option_quotes INCLUDING ALL);
INSERT INTO sol_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount, mark_price)
VALUES ('2025-01-01 00:00:00+00', 'SOL_USDC-27JUN25-200-C', 1.25, 100, 1.35, 50, 1.3);

INSERT INTO perpetuals_quotes VALUES
    ('2025-01-01 00:00:00.1+00', 'BTC-PERPETUAL', 95000.5, 12000, 95001, 3400, 95000.75, 94998.5, 0.00001234, 987654321),
    ('2025-01-01 00:00:00.2+00', 'ETH-PERPETUAL', 3300.05, 5000, 3300.1, 700, 3300.07, 3299.9, -0.00000567, 123456789);
INSERT INTO perpetuals_trades VALUES
    ('2025-01-01 00:00:00.3+00', '388457352', 'BTC-PERPETUAL', 95000.5, 1000, 'buy', 0, false),
    ('2025-01-01 00:00:00.4+00', '388457353', 'BTC-PERPETUAL', 94990, 25000, 'sell', 2, true);
INSERT INTO perpetuals_orderbook_depth VALUES
    ('2025-01-01 00:05:00+00', 'BTC-PERPETUAL', '[[95000.5, 12000], [95000, 500]]', '[[95001, 3400]]', 95000.75, 94998.5,
     0.00001234, 987654321, 55555);

-- REST tables: options_ohlcv's mark-price fill and its zeros; a real bar; an all-zero row
INSERT INTO perpetuals_ohlcv VALUES ('2025-01-01 00:00:00+00', 'BTC-PERPETUAL', 95000, 95050.5, 94990, 95010, 123.45678901);
INSERT INTO futures_ohlcv VALUES ('2025-01-01 00:00:00+00', 'BTC-27JUN25', '2025-06-27', 96000, 96050, 95990, 96010, 12.5);
INSERT INTO options_ohlcv VALUES
    ('2025-01-01 00:00:00+00', 'ETH-27JUN25-3000-C', 3000, '2025-06-27', 'call', 0.0128, 0.0128, 0.0128, 0.0128, 0, 0),
    ('2025-01-01 00:01:00+00', 'ETH-27JUN25-3000-C', 3000, '2025-06-27', 'call', 0.0125, 0.0131, 0.0124, 0.013, 4.5, 0.6543),
    ('2025-01-01 00:02:00+00', 'ETH-27JUN25-3000-C', 3000, '2025-06-27', 'call', 0, 0, 0, 0, 0, 0);
INSERT INTO options_greeks VALUES ('2025-01-01 00:00:00+00', 'BTC-27JUN25-100000-C', 0.456789, 0.000012, 12.345678, -4.567891, 1.234567);
INSERT INTO funding_rates VALUES ('2025-01-01 08:00:00+00', 'BTC-PERPETUAL', 0.0001234567);
INSERT INTO index_prices VALUES ('2025-01-01 00:00:00+00', 'BTC', 95000.12345678), ('2025-01-01 00:00:00+00', 'ETH', 3300.5);

-- their bookkeeping: never imported as ours
INSERT INTO data_gaps (instrument, start_time, end_time, duration_sec, cause)
VALUES ('ETH-27JUN25-3000-C', '2025-01-01 00:20:00+00', '2025-01-01 00:25:00+00', 300, 'disconnect');
INSERT INTO collector_status VALUES ('2025-01-01 00:00:00+00', 'ws-eth', 'running', 100, 50, 1.5, NULL);
INSERT INTO instrument_metadata (instrument_name, currency, instrument_type, is_active) VALUES ('ETH-27JUN25-3000-C', 'ETH', 'option', true);
INSERT INTO lifecycle_events (event_type, instrument_name, currency, success) VALUES ('subscribed', 'ETH-27JUN25-3000-C', 'ETH', true);
