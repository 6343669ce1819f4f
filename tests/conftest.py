"""The tests run on as many pytest-xdist workers as there are cores, at most 4
(pyproject.toml's addopts), one module's tests on one worker (`--dist loadfile`), so
that a module-scoped fixture (a network searched once for several tests, say) is
made once. A test that uses the PostgreSQL server holds its lock while it runs,
shared, or exclusive where it restarts the server (postgres_server.py): xdist's own
way to keep tests on one worker, `--dist loadgroup`, groups nothing under pytest 9.2
(pytest-xdist issue 1386), and a lock holds whichever worker runs them."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from postgres_server import server_lock


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    server = item.get_closest_marker("postgres_server")
    if server is None:
        return (yield)
    with server_lock(exclusive=server.kwargs["restarts"]):
        return (yield)
