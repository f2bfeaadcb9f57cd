"""The crawl stage: ``crawl`` (orchestration, one outcome per source), ``fetch`` (HTTP, the only
network I/O), ``robots`` (robots.txt for article pages), ``due`` (each source's schedule and
backoff), ``items`` (feed items -> articles), ``status`` (the health report) and ``probe`` (one
fetch of a feed, feed discovery)."""
