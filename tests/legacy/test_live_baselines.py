"""Imported legacy trades carry a negative trade_seq (minus the number in their trade_id): the stream's
resume baselines (the last stored trade_seq per instrument, from which the live gap checks count) must
not take one for a live sequence."""

from __future__ import annotations

import psycopg

from collector.store import resume


def test_stream_baselines_ignore_imported_trades(dsn):
    with psycopg.connect(dsn) as conn:
        conn.execute("""
            INSERT INTO eth_option_trades (timestamp, instrument, trade_seq, trade_id, price, amount, direction) VALUES
                (now() - INTERVAL '1 minute', 'ETH-A', -2696055, 'ETH-2696055', 0.01, 1, 'buy'),
                (now() - INTERVAL '1 minute', 'ETH-B', 7, 'ETH-2696100', 0.01, 1, 'buy'),
                (now() - INTERVAL '2 minutes', 'ETH-C', 3, 'ETH-2696101', 0.01, 1, 'buy'),
                (now() - INTERVAL '1 minute', 'ETH-C', -2696200, 'ETH-2696200', 0.01, 1, 'buy')""")
        conn.execute("""
            INSERT INTO perpetuals_trades (timestamp, instrument, trade_seq, trade_id, price, amount, direction) VALUES
                (now() - INTERVAL '1 minute', 'ETH-PERPETUAL', -388457352, '388457352', 3300, 10, 'buy')""")
    seqs, last_trade, _ = resume.stream_baselines(dsn, "ETH", 3600)
    assert seqs == {"ETH-B": 7, "ETH-C": 3}
    assert last_trade is not None  # the newest stored trade time still counts the imported ones (they are stored)
