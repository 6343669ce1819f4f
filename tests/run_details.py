"""What a search's records say of one run of it: the clock, the mappings this run
scored, where its study is kept. A resumed run, or another worker, changes them
and nothing else, so tests compare records without them."""

from __future__ import annotations

from typing import Any

RUN_DETAILS = ("seconds_this_run", "mappings_scored_this_run", "storage")


def without_run_details(record: Any) -> Any:
    """`record` (best.json, or part of it) without the run details, at any depth: the
    layer's search, each seed's and each padded layer's search."""
    if isinstance(record, dict):
        return {k: without_run_details(v) for k, v in record.items() if k not in RUN_DETAILS}
    if isinstance(record, list):
        return [without_run_details(v) for v in record]
    return record
