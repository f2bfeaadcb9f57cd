"""HTTP for the whole project: conditional GET with deadlines, size caps and address checks.

The only module that does network I/O. ``Fetcher.get`` never raises for network or HTTP
problems: it returns a ``FetchResult`` whose ``error`` says what went wrong in words a user
can act on.

Address safety: the session's DNS resolver (``SafeResolver``) drops every non-public address
before aiohttp connects, so the address checked is the address connected to, for the first
request and for every redirect hop; there is no window between a check and a second lookup
for DNS rebinding to use. IP literals never reach a resolver and are checked from the URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from aggregator.crawl.due import cache_max_age
from aggregator.errors import AddressRefusedError, FetchError
from aggregator.records import FetchResult, FetchStatus
from aggregator.settings import FetchSettings
from aggregator.text import one_line, shorten
from aggregator.times import retry_after_seconds

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
MAX_ERROR_CHARS = 300  # an error message is cut to this length
_CHUNK = 64 * 1024  # bytes read from the socket per step

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes that embed an IPv4 address, which must be judged instead of the wrapper.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_address(ip: str | IPAddress) -> bool:
    """True when ``ip`` is a globally routable unicast address we may connect to."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0] if isinstance(ip, str) else ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            return is_public_address(embedded)
    # is_global excludes private, loopback, link-local (cloud metadata), CGNAT, reserved and
    # documentation ranges; multicast is "global" to ipaddress but never a web server.
    return addr.is_global and not (addr.is_multicast or addr.is_unspecified or addr.is_reserved)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class HttpResult(FetchResult):
    """A FetchResult that carries what the response said about caching."""

    max_age: float | None = None  # Cache-Control max-age, seconds, when the server sent one


class SafeResolver(AbstractResolver):
    """Resolves with getaddrinfo and hands aiohttp only the addresses we may connect to."""

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None):
        self._inner = inner or ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = host.rstrip(".")
        try:
            infos = await self._inner.resolve(host, port, family)
        except socket.gaierror as exc:
            raise AddressRefusedError(f"cannot resolve host {name}: {exc.strerror}") from exc
        if not infos:
            raise AddressRefusedError(f"cannot resolve host {name}: no addresses")
        if self._allow_private:
            return infos
        allowed = [info for info in infos if is_public_address(info["host"])]
        if not allowed:
            raise AddressRefusedError(f"refused: {name} ({infos[0]['host']}) is a private address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def parse_retry_after(
    value: str | None, now: datetime | None = None, limit: float = math.inf
) -> float | None:
    """Seconds from a Retry-After header (seconds or HTTP date), clamped; None when garbage."""
    seconds = retry_after_seconds(value, now)
    return None if seconds is None else min(max(seconds, 0.0), limit)


def _reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _seconds(value: float) -> str:
    return f"{value:g} s"


class _Decoder:
    """Content-Encoding decoder that never produces more than ``cap`` bytes in total."""

    def __init__(self, encoding: str, cap: int):
        encoding = encoding.strip().lower()
        if encoding in {"", "identity"}:
            self._zlib = None
        elif encoding in {"gzip", "x-gzip", "deflate"}:
            self._zlib = zlib.decompressobj(wbits=47)  # 32+15: zlib or gzip header, detected
        else:
            raise FetchError(f"unsupported Content-Encoding {encoding!r}")
        self._encoding = encoding
        self._cap = cap
        self._raw_deflate_tried = False
        self.size = 0

    def feed(self, data: bytes) -> bytes:
        if self._zlib is None:
            return self._count(data)
        out = bytearray()
        while data:
            room = self._cap - self.size - len(out) + 1  # one byte over the cap proves "too big"
            try:
                out += self._zlib.decompress(data, room)
            except zlib.error as exc:
                first_bytes = self.size == 0 and not out
                if self._encoding == "deflate" and not self._raw_deflate_tried and first_bytes:
                    # some servers send raw deflate without the zlib header
                    self._raw_deflate_tried = True
                    self._zlib = zlib.decompressobj(wbits=-15)
                    continue
                raise FetchError(f"corrupt {self._encoding} body: {exc}") from exc
            self._count_check(len(out))
            data = self._zlib.unconsumed_tail
            if not data and self._zlib.eof and self._zlib.unused_data.startswith(b"\x1f\x8b"):
                # concatenated gzip members; other trailing bytes are ignored, as browsers do
                data = self._zlib.unused_data
                self._zlib = zlib.decompressobj(wbits=47)
        return self._count(bytes(out))

    def finish(self) -> bytes:
        """Whatever the decompressor still holds once the body has ended."""
        if self._zlib is None:
            return b""
        return self._count(self._zlib.flush(self._cap - self.size + 1))

    def _count_check(self, pending: int) -> None:
        if self.size + pending > self._cap:
            raise FetchError(f"body larger than {self._cap} bytes")

    def _count(self, data: bytes) -> bytes:
        self._count_check(len(data))
        self.size += len(data)
        return data


class Fetcher:
    """One HTTP session with global and per-host concurrency limits; use ``async with``."""

    def __init__(self, settings: FetchSettings):
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        resolver = SafeResolver(allow_private=s.allow_private_networks)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=s.concurrency, limit_per_host=s.per_host, resolver=resolver
            ),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=s.connect_timeout, sock_connect=s.connect_timeout
            ),
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate"},
            auto_decompress=False,  # we decode ourselves so the size cap applies to decoded bytes
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` following redirects; never raises for network or HTTP problems.

        ``max_bytes`` lowers the settings' size cap for this request (robots.txt, say).
        """
        started = time.monotonic()
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            cap = min(max_bytes or self.settings.max_bytes, self.settings.max_bytes)
            result = await self._follow(url, headers, cap)
        except FetchError as exc:
            result = FetchResult(url=url, status=FetchStatus.ERROR, error=_error_line(str(exc)))
        except Exception as exc:  # one odd failure must never stop a crawl
            error = _error_line(_describe_error(exc))
            result = FetchResult(url=url, status=FetchStatus.ERROR, error=error)
        return _with_elapsed(result, time.monotonic() - started, etag, last_modified)

    async def _follow(self, url: str, headers: dict[str, str], cap: int) -> FetchResult:
        """Walk the redirect chain by hand so every hop is checked."""
        deadline: float | None = None
        seen: set[str] = set()
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            host = _check_url(current)
            seen.add(current)
            async with self._slot(host):
                loop = asyncio.get_running_loop()
                deadline = deadline or loop.time() + self.settings.timeout  # waiting is free
                try:
                    async with asyncio.timeout_at(deadline):
                        outcome = await self._one_hop(url, current, headers, cap)
                except TimeoutError as exc:
                    if isinstance(exc, aiohttp.ConnectionTimeoutError):
                        raise FetchError(
                            f"could not connect within {_seconds(self.settings.connect_timeout)}"
                        ) from exc
                    if loop.time() >= deadline - 0.05:
                        raise FetchError(
                            f"timed out after {_seconds(self.settings.timeout)}"
                        ) from exc
                    raise FetchError(f"read timed out: {exc}") from exc
            if isinstance(outcome, FetchResult):
                return outcome
            current = outcome
        loop_note = " (redirect loop)" if current in seen else ""
        raise FetchError(
            f"too many redirects (more than {self.settings.max_redirects}){loop_note}, "
            f"last to {current}"
        )

    @asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        # per-host first, so requests queued for one busy host do not hold global slots
        sem = self._host_slots.setdefault(host, asyncio.Semaphore(self.settings.per_host))
        async with sem, self._slots:
            yield

    async def _one_hop(
        self, url: str, current: str, headers: dict[str, str], cap: int
    ) -> FetchResult | str:
        """One request: a finished result, or the URL a redirect points to."""
        if self._session is None:
            raise RuntimeError("use 'async with Fetcher(...)' before calling get()")
        self._check_literal_address(current)
        async with self._session.get(current, headers=headers, allow_redirects=False) as resp:
            status = resp.status
            if status in REDIRECT_CODES:
                location = resp.headers.get("Location")
                if not location:
                    raise FetchError(f"{_reason(status)} without a Location header")
                return urljoin(current, location)
            if status == 304:
                return _result(url, resp, FetchStatus.NOT_MODIFIED)
            if not 200 <= status < 300:
                return _http_error(url, resp, self.settings.max_retry_after)
            return _result(url, resp, FetchStatus.OK, body=await self._read(resp, cap))

    async def _read(self, resp: aiohttp.ClientResponse, cap: int) -> bytes:
        """The decoded body, aborted as soon as it passes the size cap."""
        declared = resp.content_length
        if declared is not None and declared > cap:
            raise FetchError(f"body larger than {cap} bytes (Content-Length says {declared})")
        decoder = _Decoder(resp.headers.get("Content-Encoding", ""), cap)
        parts: list[bytes] = []
        raw = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            raw += len(chunk)
            if raw > cap:  # compressed bytes alone over the cap
                raise FetchError(f"body larger than {cap} bytes")
            parts.append(decoder.feed(chunk))
        parts.append(decoder.finish())
        return b"".join(parts)

    def _check_literal_address(self, url: str) -> None:
        """Refuse IP-literal hosts that are not public; names are checked by SafeResolver."""
        if self.settings.allow_private_networks:
            return
        host = urlsplit(url).hostname or ""
        ip = _literal_ip(host)
        if ip is not None and not is_public_address(ip):
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise FetchError(f"refused: {shown} is a private address")


def _literal_ip(host: str) -> IPAddress | None:
    """The address an IP-literal host names, legacy IPv4 spellings (2130706433, 127.1) too."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(part.isalnum() for part in host.split(".")) and host[-1].isalnum():
        try:  # inet_aton takes the integer, octal and hex forms browsers and libc accept
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _check_url(url: str) -> str:
    """Validate scheme and host (saying what is wrong); return the host key for per-host limits."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}") from exc
    if parts.scheme not in {"http", "https"}:
        raise FetchError(f"refused: {url!r} is not an http(s) URL")
    if not parts.hostname:
        raise FetchError(f"invalid URL {url!r}: no host")
    return f"{parts.hostname.lower()}:{port or ''}"


def _result(
    url: str,
    resp: aiohttp.ClientResponse,
    status: FetchStatus,
    *,
    body: bytes = b"",
    error: str | None = None,
    retry_after: float | None = None,
) -> FetchResult:
    """A FetchResult carrying what the response said about itself."""
    max_age = cache_max_age_seconds(resp.headers.get("Cache-Control"))
    return HttpResult(
        url=url,
        status=status,
        body=body,
        final_url=str(resp.url),
        http_status=resp.status,
        content_type=resp.headers.get("Content-Type", ""),
        etag=resp.headers.get("ETag"),
        last_modified=resp.headers.get("Last-Modified"),
        error=error,
        retry_after=retry_after,
        max_age=max_age,
    )


def cache_max_age_seconds(header: str | None) -> float | None:
    """Cache-Control max-age in seconds (None when absent, zero, no-cache or no-store)."""
    age = cache_max_age(header)
    return age.total_seconds() if age is not None else None


def _http_error(url: str, resp: aiohttp.ClientResponse, limit: float) -> FetchResult:
    """An error status, with the server's Retry-After (clamped to ``limit``) for 429 and 503."""
    retry_after = None
    error = _reason(resp.status)
    if resp.status in {429, 503}:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), limit=limit)
        if retry_after is not None:
            error += f" (retry after {retry_after:.0f} s)"
    return _result(url, resp, FetchStatus.ERROR, error=error, retry_after=retry_after)


def _describe_error(exc: Exception) -> str:
    """A readable reason for an exception raised by aiohttp or the socket layer."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate verify failed for {exc.host}: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, AddressRefusedError):
            return str(exc.os_error)
        return f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection before answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"body incomplete: {exc}"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"bad HTTP response: {exc.message}"
    if isinstance(exc, aiohttp.ClientError):
        return f"HTTP error: {type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc}"


def _error_line(text: str) -> str:
    """Errors end up in logs and status pages: one line, bounded (servers echo garbage)."""
    return shorten(one_line(text), MAX_ERROR_CHARS)


def _with_elapsed(
    result: FetchResult, elapsed: float, etag: str | None, last_modified: str | None
) -> FetchResult:
    """Stamp the elapsed time; a 304 keeps the validators it was asked with if it sent none."""
    if result.status is FetchStatus.NOT_MODIFIED:
        return replace(
            result,
            elapsed=elapsed,
            etag=result.etag or etag,
            last_modified=result.last_modified or last_modified,
        )
    return replace(result, elapsed=elapsed)
