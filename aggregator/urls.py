"""Article identity: canonical URLs (tracking parameters stripped) and stable ids."""

from __future__ import annotations

import hashlib
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the reader; they never change which article a URL names.
TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "ga_", "hsa_", "oly_", "vero_")
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid",
        "mkt_tok", "_hsenc", "_hsmi", "ref_src", "cmpid", "ncid", "ocid", "sr_share",
        "icid", "at_medium", "at_campaign", "xtor", "__twitter_impression",
    }
)  # fmt: skip


def host_and_port(parts: SplitResult) -> str:
    """Lowercase host without a trailing dot, with the port unless it is the scheme's default."""
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return host


def canonical_url(url: str) -> str:
    """Normalise a URL for identity: lowercase scheme/host, no fragment, no tracking params."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in {"http", "https"}:
        return url
    scheme = parts.scheme.lower()
    host = host_and_port(parts)
    if parts.username:
        host = f"{parts.username}{':' + parts.password if parts.password else ''}@{host}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query, doseq=True), ""))


def article_id(url: str = "", guid: str = "", source_id: str = "") -> str:
    """Stable id from the canonical link; the source-scoped GUID when there is no link."""
    if url:
        key = "url:" + canonical_url(url)
    elif guid:
        key = f"guid:{source_id}:{guid.strip()}"
    else:
        raise ValueError("an article needs a link or a GUID for its identity")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
