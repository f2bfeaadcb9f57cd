"""Shared fixtures: the real-world data folder, SQLite and PostgreSQL storages."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.store.storage import Storage
from tests.support.openai_stub import OpenAIStub

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
PG_ADMIN_URL = os.environ.get(
    "AGGREGATOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests serve everything on 127.0.0.1, which the fetcher refuses by default."""
    monkeypatch.setenv("AGGREGATOR_ALLOW_PRIVATE_NETWORKS", "1")
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_MODEL",
        "AGGREGATOR_DB_URL",
        "AGGREGATOR_DATA_DIR",
        "AGGREGATOR_OUTPUT_DIR",
        "AGGREGATOR_HEALTH_FILE",
        "AGGREGATOR_LOG_FORMAT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: present in CI and developer checkouts, absent on a user's fresh clone."""
    if not SHARED_DATA.is_dir():
        if IN_CI:
            pytest.fail(f"{SHARED_DATA} is missing: CI must run the real-data tests")
        pytest.skip(f"real-world data not found at {SHARED_DATA} (fresh clone without ../shared)")
    return SHARED_DATA


def _pg_available() -> str | None:
    import psycopg

    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    import psycopg

    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {problem}")
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {problem}")
    name = f"aggregator_test_{uuid.uuid4().hex[:10]}"
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied before each test (every table, the migrations'
    version table included: the next Storage migrates it from empty)."""
    import psycopg

    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    yield pg_database


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each backend: the storage tests run on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def storage(db_url: str) -> Iterator[Storage]:
    store = Storage(db_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline demo's site, built once per session (the site checks read it): its folder."""
    from aggregator.demo.run import run_demo

    out = tmp_path_factory.mktemp("demo") / "site"
    with pytest.MonkeyPatch.context() as env:
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "AGGREGATOR_DB_URL"):
            env.delenv(name, raising=False)  # the demo is offline whatever the shell holds
        run_demo(out)
    return out.resolve()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the browser checks left their screenshots, for a person to look at."""
    from tests.support.site_tools import SCREENSHOTS, taken

    if taken:
        terminalreporter.write_line(f"screenshots: {len(taken)} in {SCREENSHOTS}")


@pytest.fixture(scope="module")
def openai_server() -> Iterator[OpenAIStub]:
    """One loopback OpenAI-compatible stub per test module; tests ``reset`` its script."""
    with OpenAIStub([]) as shared:
        yield shared
