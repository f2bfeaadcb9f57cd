"""robots.txt for article pages: what an origin lets us fetch, and how far apart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from aggregator.records import (
    FetchResult,
    FetchStatus,
)

ROBOTS_ACCEPT = "text/plain, */*;q=0.5"


# -- robots.txt ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt lets us fetch: parsed rules, allow-all or deny-all."""

    parser: RobotFileParser | None  # None: no rules to apply
    allow_all: bool  # used when there is no parser
    why: str  # for the log: "disallowed by robots.txt", "robots.txt unavailable: ..."

    def allows(self, url: str, agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(agent, url)

    def crawl_delay(self, agent: str) -> float:
        """Seconds to leave between two page fetches from the origin (Crawl-delay), or 0."""
        if self.parser is None:
            return 0.0
        try:
            delay = float(self.parser.crawl_delay(agent) or 0)
        except (TypeError, ValueError):
            return 0.0
        return delay if math.isfinite(delay) and delay > 0 else 0.0


def url_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def robots_agent(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: 'aggregator'."""
    return user_agent.split("/", 1)[0].strip() or user_agent


def robots_rules(result: FetchResult) -> RobotsRules:
    """Rules from a robots.txt fetch: a missing file (4xx) allows all; a server error, a
    timeout or a network failure denies all pages of that origin for this crawl (RFC 9309)."""
    if result.status is FetchStatus.OK:
        parser = RobotFileParser()
        parser.parse(result.body.decode("utf-8", "replace").splitlines())
        return RobotsRules(parser, True, "disallowed by robots.txt")
    status = result.http_status
    if status is not None and 400 <= status < 500 and status != 429:
        return RobotsRules(None, True, f"no robots.txt ({result.error})")
    return RobotsRules(None, False, f"robots.txt unavailable ({result.error}); pages skipped")
