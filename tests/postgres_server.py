"""A fresh PostgreSQL database per test, on the server MAPPER_TEST_POSTGRES_URL names
(.ci/run starts a throwaway one and sets it). Without it the tests that need a server
are skipped, saying so."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

SERVER_URL = os.environ.get("MAPPER_TEST_POSTGRES_URL")

needs_postgres = pytest.mark.skipif(
    SERVER_URL is None, reason="needs a PostgreSQL server: set MAPPER_TEST_POSTGRES_URL="
    "postgresql://user:password@host:port/db (.ci/run starts one and sets it)")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of an empty database, dropped after the test: studies of one test never
    meet another's."""
    import sqlalchemy

    assert SERVER_URL is not None
    server = sqlalchemy.make_url(SERVER_URL)
    name = f"mapper_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
