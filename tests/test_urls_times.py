"""The one answer to "is this an http(s) URL?" and to the questions about times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.times import (
    EARLIEST_DATE,
    FUTURE_SLACK,
    ago,
    iso,
    parse_http_date,
    parse_iso,
    plausible,
    retry_after_seconds,
)
from aggregator.urls import absolute_url, http_url

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", "ftp://a.example/x", "//a.example/x", "/x", "http://", "http://:80/",
     "https://exa mple.org/feed", "https://a.example/a b", "https://a.example/\x00", 42, None,
     "http://a.example:port/"],
)  # fmt: skip
def test_http_url_refuses(value: object) -> None:
    assert http_url(value) == ""


def test_http_url_keeps_real_urls_as_written() -> None:
    assert http_url(" https://a.example/x?y=1&z=2 ") == "https://a.example/x?y=1&z=2"
    assert http_url("HTTP://A.example") == "HTTP://A.example"


def test_absolute_url_resolves_and_encodes_spaces_after_the_host_only() -> None:
    assert absolute_url("/b c?d e", "https://a.example/x/") == "https://a.example/b%20c?d%20e"
    assert absolute_url("https://exa mple.org/feed") == ""  # a space in the host: no URL
    assert absolute_url("https://a.example/\tpath\n") == "https://a.example/path"
    assert absolute_url("mailto:x@a.example", "https://a.example/") == ""
    assert absolute_url("", "https://a.example/") == ""


def test_ago_rounds_in_the_unit_it_shows() -> None:
    assert [ago(h) for h in (-1, 0, 0.004, 0.5, 59.6 / 60, 3.6, 30, 47.4, 47.6, 100)] == [
        "just now", "just now", "just now", "30 min ago", "1 h ago", "4 h ago", "30 h ago",
        "47 h ago", "2 days ago", "4 days ago",
    ]  # fmt: skip


def test_plausible_dates() -> None:
    assert plausible(NOW + FUTURE_SLACK, NOW) == NOW + FUTURE_SLACK
    assert plausible(NOW + FUTURE_SLACK + timedelta(seconds=1), NOW) is None
    assert plausible(EARLIEST_DATE - timedelta(seconds=1), NOW) is None
    assert plausible(datetime(2025, 1, 1), NOW) == datetime(2025, 1, 1, tzinfo=UTC)  # naive: UTC


def test_iso_and_http_dates() -> None:
    assert parse_iso("2025-07-01T12:00:00Z") == NOW == parse_iso("2025-07-01T14:00:00+02:00")
    assert iso(NOW) == "2025-07-01T12:00:00Z" and iso(None) is None
    with pytest.raises(ValueError):
        parse_iso("yesterday")
    assert parse_http_date("Tue, 01 Jul 2025 12:00:00 GMT") == NOW
    assert parse_http_date("garbage") is None and parse_http_date(None) is None
    assert retry_after_seconds("Tue, 01 Jul 2025 12:05:00 GMT", NOW) == 300
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds("-5") is None and retry_after_seconds("nan") is None
