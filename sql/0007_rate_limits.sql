-- 0007: rate-limit answers per job. Every job counts the answers "too many requests" it got from
-- Deribit (JSON-RPC 10028 / 10066, HTTP 429) and writes the count with its status row; the jobs of a
-- host share one credit budget (collector/ratebudget.py), so anything above 0 here means another
-- client on the same address, or a budget that is not shared (DERIBIT_SHARED_BUDGET=no).

ALTER TABLE collector_status ADD COLUMN IF NOT EXISTS rate_limited bigint NOT NULL DEFAULT 0;
