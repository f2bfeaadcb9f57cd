"""Source health decisions, without I/O: due times, backoff, hints, states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.crawl.due import (
    DAY,
    backoff,
    cache_max_age,
    describe_wait,
    feed_ttl,
    is_due,
    jitter,
    next_fetch_time,
)
from aggregator.crawl.status import Health, SourceFacts, classify

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


def test_jitter_is_within_ten_percent_and_fixed_per_source() -> None:
    factors = [jitter(f"source-{n}") for n in range(500)]
    assert all(0.9 <= f <= 1.1 for f in factors)
    assert jitter("bbc") == jitter("bbc")
    assert max(factors) - min(factors) > 0.15  # sources are actually spread out


def test_backoff_doubles_then_caps_at_a_day_and_zero_failures_is_the_interval() -> None:
    assert backoff(0, HALF_HOUR, "s") == HALF_HOUR
    j = jitter("s")
    for failures, expected in [(1, 30), (2, 60), (3, 120), (4, 240), (6, 960)]:
        assert backoff(failures, HALF_HOUR, "s") == timedelta(minutes=expected) * j
    assert backoff(7, HALF_HOUR, "s") == DAY * j  # 1,920 min is past the cap
    assert backoff(10_000, HALF_HOUR, "s") == DAY * j
    week = timedelta(days=7)  # an editor's interval longer than the cap is kept, no overflow
    assert backoff(500, week, "s") == week * j
    for n in range(1, 40):
        wait = backoff(n, HALF_HOUR, f"src{n}")
        base = min(HALF_HOUR * 2 ** min(n - 1, 10), DAY)
        assert 0.9 * base <= wait <= 1.1 * base


def test_next_fetch_time_on_success_uses_the_largest_lower_bound() -> None:
    plain = next_fetch_time(NOW, interval=HALF_HOUR, source_id="s")
    assert plain == NOW + HALF_HOUR
    ttl = next_fetch_time(NOW, interval=HALF_HOUR, source_id="s", feed_ttl=timedelta(hours=2))
    assert ttl == NOW + timedelta(hours=2)
    age = next_fetch_time(
        NOW, interval=HALF_HOUR, source_id="s", max_age=timedelta(hours=3), feed_ttl=HALF_HOUR
    )
    assert age == NOW + timedelta(hours=3)
    # a hint shorter than the interval never makes us fetch more often
    short = next_fetch_time(NOW, interval=HALF_HOUR, source_id="s", max_age=timedelta(minutes=1))
    assert short == NOW + HALF_HOUR
    # absurd hints are clamped to a day; the editor's own interval is not
    absurd = next_fetch_time(NOW, interval=HALF_HOUR, source_id="s", feed_ttl=timedelta(days=90))
    assert absurd == NOW + DAY
    weekly = next_fetch_time(NOW, interval=timedelta(days=7), source_id="s")
    assert weekly == NOW + timedelta(days=7)


def test_next_fetch_time_on_failure_backs_off_and_honours_retry_after() -> None:
    third = next_fetch_time(NOW, interval=HALF_HOUR, source_id="s", failures=3)
    assert third == NOW + backoff(3, HALF_HOUR, "s")
    # a failure ignores the feed's hints (there is no feed)
    hinted = next_fetch_time(
        NOW, interval=HALF_HOUR, source_id="s", failures=1, feed_ttl=timedelta(hours=5)
    )
    assert hinted == NOW + backoff(1, HALF_HOUR, "s")
    waited = next_fetch_time(NOW, interval=HALF_HOUR, source_id="s", failures=1, retry_after=7200)
    assert waited == NOW + timedelta(hours=2)
    # Retry-After is clamped by the operator's maximum
    clamped = next_fetch_time(
        NOW,
        interval=HALF_HOUR,
        source_id="s",
        failures=1,
        retry_after=10 * 86_400,
        max_retry_after=timedelta(hours=6),
    )
    assert clamped == NOW + timedelta(hours=6)
    # a Retry-After shorter than the backoff does not shorten it
    assert next_fetch_time(
        NOW, interval=HALF_HOUR, source_id="s", failures=5, retry_after=60
    ) == NOW + backoff(5, HALF_HOUR, "s")


def test_is_due_with_a_little_slack() -> None:
    assert is_due(None, NOW)
    assert is_due(NOW, NOW)
    assert is_due(NOW + timedelta(seconds=30), NOW)  # a schedule tick a few seconds early
    assert not is_due(NOW + timedelta(minutes=5), NOW)
    assert is_due(NOW - timedelta(days=3), NOW)


def _facts(**kw: object) -> SourceFacts:
    base: dict[str, object] = {
        "enabled": True,
        "fetched": True,
        "gone": False,
        "consecutive_failures": 0,
        "last_status": "ok",
        "next_fetch": NOW + HALF_HOUR,
    }
    base.update(kw)
    return SourceFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (_facts(), Health.OK),
        (_facts(last_status="not_modified"), Health.NOT_MODIFIED),
        (_facts(last_status="error", consecutive_failures=2), Health.BACKING_OFF),
        (
            _facts(last_status="error", consecutive_failures=2, next_fetch=NOW),
            Health.FAILING,
        ),
        (_facts(gone=True, last_status="error", consecutive_failures=1), Health.GONE),
        (_facts(enabled=False, gone=True), Health.DISABLED),
        (_facts(fetched=False, last_status=None, next_fetch=None), Health.NEVER),
    ],
)
def test_classify(facts: SourceFacts, expected: Health) -> None:
    assert classify(facts, NOW) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<rss><channel><ttl>90</ttl></channel></rss>", timedelta(minutes=90)),
        (b"<rss><channel><TTL> 15 </TTL></channel></rss>", timedelta(minutes=15)),
        (b"<rss><channel><ttl>0</ttl></channel></rss>", None),
        (b"<rss><channel><ttl>soon</ttl></channel></rss>", None),
        (
            b'<rss xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>'
            b"<sy:updatePeriod>hourly</sy:updatePeriod>"
            b"<sy:updateFrequency>2</sy:updateFrequency></channel></rss>",
            timedelta(minutes=30),
        ),
        (b"<sy:updatePeriod>daily</sy:updatePeriod>", DAY),
        (b"<sy:updatePeriod>fortnightly</sy:updatePeriod>", None),
        (b"<feed><title>no hints</title></feed>", None),
    ],
)
def test_feed_ttl(body: bytes, expected: timedelta | None) -> None:
    assert feed_ttl(body) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=600", timedelta(minutes=10)),
        ("public, max-age=3600, must-revalidate", timedelta(hours=1)),
        ('max-age="120"', timedelta(minutes=2)),
        ("s-maxage=999", None),
        ("no-cache, max-age=600", None),
        ("no-store", None),
        ("max-age=0", None),
        ("max-age=garbage", None),
        (None, None),
        ("", None),
    ],
)
def test_cache_max_age(header: str | None, expected: timedelta | None) -> None:
    assert cache_max_age(header) == expected


def test_describe_wait() -> None:
    assert describe_wait(NOW + timedelta(hours=2, minutes=5), NOW) == "14:05"
    assert describe_wait(NOW + timedelta(hours=13), NOW) == "2026-11-27 01:00"
