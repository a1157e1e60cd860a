"""`collector db import-legacy`: the Docker collector's database (its layout: README, "Moving from the
Docker setup") copied into ours.

* catalog: what the source holds (any subset of its tables and columns), row estimates.
* mapping: each kind of legacy table -> our table, column by column, and why a row is rejected.
* engine: the bounded-memory copy of one table, in parts (binary COPY out -> staging -> INSERT … ON CONFLICT).
* source: the legacy session and the thread that streams a part's rows in batches.
* progress: the per-table high-water mark in ``legacy_import_progress``, the bar on stderr.
* report: the dry-run listing and the final table.
* job: the command itself.
"""
