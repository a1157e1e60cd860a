"""The stream's trade reconcile: a trade that never arrives over the stream and is followed by silence
lands within one reconcile interval (the simulator's ``skip_trades`` on an option that then goes quiet),
and so do trades skipped before an instrument's first one seen after a start with no stored baseline."""

from __future__ import annotations

import dataclasses
from tests.jobs.wsrun import FAST, JobThread, control, rows, settings_for, start_sim, wait_until

INTERVAL_S = 2.0
OPTIONS = dataclasses.replace(FAST, trades_reconcile_every_s=INTERVAL_S)
# one interval, the settle time and the fetch and write: generous, since the machine is shared
WITHIN_S = 4 * INTERVAL_S + 30
SKIP = 1_000_000          # every trade from then on


def truth(sim, name: str) -> list[tuple[int, int]]:
    got = control(sim, "trades", instrument=name)
    assert got["complete"]
    return [(t["trade_seq"], t["timestamp"]) for t in got["trades"]]


def stored(dsn: str, name: str) -> set[int]:
    return {r[0] for r in rows(dsn, "SELECT trade_seq FROM btc_option_trades WHERE instrument = %s", name)}


def skipping(sim, name: str) -> int:
    return sim.call(lambda: sim.server.market.live[name].skip_trades)


def test_skipped_last_trades_of_an_option_that_goes_quiet_land_within_one_interval(dsn, tmp_path):
    sim = start_sim(strikes=3, rate=400, trade_rate=300)
    job = JobThread(settings_for(sim, dsn, tmp_path / "spool"), options=OPTIONS).start()
    try:
        wait_until(lambda: job.job.ready, 30, what="READY")
        # a victim with a trade seen over the stream (its baseline)
        victim = wait_until(lambda: next(iter(n for n, in rows(
            dsn, "SELECT DISTINCT instrument FROM btc_option_trades")), None), 30, what="a first option trade")
        seen = max(stored(dsn, victim))
        # every further trade of the victim is kept from the stream; once a few are, the market stops
        control(sim, "fault", {"kind": "skip_trades", "instrument": victim, "count": SKIP})
        wait_until(lambda: SKIP - skipping(sim, victim) >= 3, 60, what="three skipped trades")
        control(sim, "clock", {"speed": 0})
        passes = job.job.trade_reconcile.passes
        wait_until(lambda: stored(dsn, victim) >= {s for s, _ in truth(sim, victim)}, WITHIN_S,
                   what="the skipped trades in the database")
        skipped = SKIP - skipping(sim, victim)                 # (the market stood still meanwhile)
        lost = [s for s, _ in truth(sim, victim)][-skipped:]   # the newest ones: none reached the stream
        assert len(lost) >= 3 and lost[0] > seen
        assert job.job.trade_reconcile.passes <= passes + 2   # found by the next pass (or the one in flight)
        assert job.job.pipeline.counts["trade_gaps"] == 0     # no later trade revealed them: the reconcile did
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM data_gaps WHERE cause = 'trade_reconcile'")[0][0] > 0,
                   10, what="the data_gaps row")
        gaps = rows(dsn, "SELECT instrument, from_seq, to_seq, backfilled_at IS NOT NULL FROM data_gaps "
                         "WHERE cause = 'trade_reconcile'")
        assert [g[0] for g in gaps] == [victim] * len(gaps)   # no false alarm for the other options
        assert min(g[1] for g in gaps) == lost[0] and max(g[2] for g in gaps) == lost[-1]
        assert all(g[3] for g in gaps)
        assert job.stop() == 0
        assert stored(dsn, victim) == {s for s, _ in truth(sim, victim)}
    finally:
        job.stop()
        sim.stop()


def test_trades_skipped_before_the_first_one_seen_after_a_start_without_baseline_are_recovered(dsn, tmp_path):
    sim = start_sim(strikes=3, rate=400, trade_rate=300, speed=0)
    job = JobThread(settings_for(sim, dsn, tmp_path / "spool"), options=OPTIONS).start()
    try:
        wait_until(lambda: job.job.ready, 30, what="READY")
        victim = sorted(job.job.followed)[len(job.job.followed) // 2]
        start_seq = truth(sim, victim)[-1][0] if truth(sim, victim) else None
        # the victim's first trades after the start never reach the stream; the ones after do, and the
        # first of those becomes its baseline (nothing was stored before)
        control(sim, "fault", {"kind": "skip_trades", "instrument": victim, "count": 3})
        control(sim, "clock", {"speed": 1})
        wait_until(lambda: skipping(sim, victim) == 0 and len(stored(dsn, victim)) > 0, 60,
                   what="the victim's skipped trades, then one seen")
        after = sorted(s for s, _ in truth(sim, victim) if start_seq is None or s > start_seq)
        skipped = set(after[:3])                              # the fault's three: the victim's first trades
        # Either a pass saw them before the stream delivered one (no baseline: recovered as missing), or the
        # first one seen became the baseline and a pass wrote them again (rewritten) -- which one depends on
        # when the passes fall; both must end with every one of them stored
        wait_until(lambda: stored(dsn, victim) >= skipped, WITHIN_S, what="the trades before the first one seen")
        rec = job.job.trade_reconcile
        assert rec.rewritten > 0 or rec.recovered >= len(skipped), (rec.rewritten, rec.recovered)
        assert job.stop() == 0
    finally:
        job.stop()
        sim.stop()
