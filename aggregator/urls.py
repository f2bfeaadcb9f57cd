"""URLs: the one answer to "is this an http(s) URL?", canonical URLs (tracking parameters
stripped) and the stable article ids made from them."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that only track the reader; they never change which article a URL names.
TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "ga_", "hsa_", "oly_", "vero_")
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid",
        "mkt_tok", "_hsenc", "_hsmi", "ref_src", "cmpid", "ncid", "ocid", "sr_share",
        "icid", "at_medium", "at_campaign", "xtor", "__twitter_impression",
    }
)  # fmt: skip


_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_NOT_IN_URL = re.compile(r"[\s\x00-\x1f\x7f]")  # whitespace (any script's) and control characters


def http_url(value: object) -> str:
    """``value`` (stripped) if it is an absolute http(s) URL with a host, else "".

    Whitespace or a control character inside a URL is refused: no real link has one, and it is a
    way to smuggle something past a check that looks at the start of a string.
    """
    if not isinstance(value, str):
        return ""
    url = value.strip()
    if not url or _NOT_IN_URL.search(url):
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return ""
    return url if parts.scheme in {"http", "https"} and parts.hostname else ""


def absolute_url(link: object, base: str = "") -> str:
    """A link as a usable http(s) URL: resolved against ``base``, tabs and newlines dropped and
    spaces after the host percent-encoded (as browsers and HTTP clients do); "" when the result
    is not an http(s) URL with a host (a space in the host, javascript:, mailto:, garbage)."""
    if not isinstance(link, str):
        return ""
    link = link.strip().translate(_TAB_NEWLINE)
    if not link:
        return ""
    try:
        absolute = urljoin(base, link) if base else link
        host = urlsplit(absolute).netloc
    except ValueError:
        return ""
    if " " in absolute and host and " " not in host:
        end = absolute.index(host) + len(host)
        absolute = absolute[:end] + absolute[end:].replace(" ", "%20")
    return http_url(absolute)


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


def article_id(
    url: str = "", guid: str = "", source_id: str = "", *, canonical: bool = False
) -> str:
    """Stable id from the canonical link; the source-scoped GUID when there is no link.

    ``canonical``: ``url`` is canonical_url's result already (it is not made again).
    """
    if url:
        key = "url:" + (url if canonical else canonical_url(url))
    elif guid:
        key = f"guid:{source_id}:{guid.strip()}"
    else:
        raise ValueError("an article needs a link or a GUID for its identity")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
