"""A fresh PostgreSQL database per test, on the server MAPPER_TEST_POSTGRES_URL names
(.ci/run starts a throwaway one and sets it), and the server stopped and started again
with MAPPER_TEST_POSTGRES_CTL (a command: `CTL stop`, `CTL start`; .ci/run writes it).
Without them the tests that need a server, or need to restart it, are skipped, saying so."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVER_URL = os.environ.get("MAPPER_TEST_POSTGRES_URL")
SERVER_CTL = os.environ.get("MAPPER_TEST_POSTGRES_CTL")

# The tests run on several processes (pytest-xdist), and a test that stops the server
# would cut the connections of one running elsewhere: each test that uses the server
# holds a shared lock on it while it runs (conftest.py), one that restarts it an
# exclusive one.
USES_THE_SERVER = pytest.mark.postgres_server(restarts=False)
RESTARTS_THE_SERVER = pytest.mark.postgres_server(restarts=True)


def needs_postgres(test: Callable) -> Callable:
    return USES_THE_SERVER(pytest.mark.skipif(
        SERVER_URL is None, reason="needs a PostgreSQL server: set MAPPER_TEST_POSTGRES_URL="
        "postgresql://user:password@host:port/db (.ci/run starts one and sets it)")(test))


def needs_postgres_restarts(test: Callable) -> Callable:
    return RESTARTS_THE_SERVER(pytest.mark.skipif(
        SERVER_URL is None or SERVER_CTL is None, reason="needs a PostgreSQL server it may stop and start: set "
        "MAPPER_TEST_POSTGRES_URL and MAPPER_TEST_POSTGRES_CTL (a command taking stop or start; .ci/run sets "
        "both)")(test))


@contextmanager
def server_lock(exclusive: bool) -> Iterator[None]:
    """The server's lock, shared or exclusive, held while the body runs (a file lock:
    released with the process, however it ends)."""
    name = hashlib.sha256((SERVER_URL or "").encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"mapper-test-postgres-{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards: studies of one test (or
    one round of a test) never meet another's."""
    import sqlalchemy

    assert SERVER_URL is not None
    server = sqlalchemy.make_url(SERVER_URL)
    name = f"mapper_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of an empty database, dropped after the test."""
    with fresh_database() as url:
        yield url


@contextmanager
def server_stopped() -> Iterator[None]:
    """The server stopped (its connections closed, as in a restart) while the body
    runs, and started again after it, whatever happens in it."""
    assert SERVER_CTL is not None
    subprocess.run([SERVER_CTL, "stop"], check=True, timeout=300)
    try:
        yield
    finally:
        subprocess.run([SERVER_CTL, "start"], check=True, timeout=300)
