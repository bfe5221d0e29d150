"""End to end (issue 8): the M3 missingness sweep, evaluation of the M3 / MIMIC runs, validation
of every shard output and the results report (``reports/results.md`` + PNG plots)."""
