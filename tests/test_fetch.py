"""The fetcher against real HTTP servers on 127.0.0.1: limits, deadlines, redirects, addresses."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from aggregator.crawl.fetch import (
    PAGE_ACCEPT,
    Fetcher,
    SafeResolver,
    is_public_address,
    parse_retry_after,
)
from aggregator.demo.server import QuietHTTPServer
from aggregator.errors import AddressRefusedError
from aggregator.records import FetchResult, FetchStatus
from aggregator.settings import Settings
from tests.support.loopback import LoopbackServer, Request, Response

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def settings(**overrides: Any) -> Any:
    """FetchSettings with loopback allowed and any overrides."""
    base = {"allow_private_networks": True, **overrides}
    return Settings().fetch.model_copy(update=base)


def fetch(url: str, *, fetch_settings: Any = None, **kwargs: Any) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(fetch_settings or settings()) as fetcher:
            return await fetcher.get(url, **kwargs)

    return asyncio.run(run())


# -- address safety (pure function) -----------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",  # AWS IPv6 metadata (unique local)
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.1.2.3",
        "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
        "not an address",
    ],
)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert is_public_address(ip) is False


@pytest.mark.parametrize(
    "ip", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert is_public_address(ip) is True


def test_loopback_refused_when_private_networks_are_not_allowed() -> None:
    with LoopbackServer({"/feed": Response(body=FEED)}) as srv:
        strict = settings(allow_private_networks=False)
        result = fetch(srv.url("/feed"), fetch_settings=strict)
        assert result.status is FetchStatus.ERROR
        assert result.error == "refused: 127.0.0.1 is a private address"
        # the integer spelling of 127.0.0.1 and a name resolving to it are refused too
        integer = fetch(f"http://2130706433:{srv.port}/feed", fetch_settings=strict)
        assert integer.error == "refused: 2130706433 (127.0.0.1) is a private address"
        named = fetch(f"http://localhost:{srv.port}/feed", fetch_settings=strict)
        assert named.status is FetchStatus.ERROR
        assert named.error is not None and "is a private address" in named.error
        assert srv.requests == []  # refused before connecting
        # the same URL works when the operator allows private networks
        assert fetch(srv.url("/feed")).status is FetchStatus.OK


def test_a_name_resolving_to_loopback_is_refused_at_connection_time() -> None:
    """DNS rebinding: the address judged is the one the connector gets, not an earlier lookup.

    No check runs before the request: the session's resolver drops refused addresses, so
    without it this request would reach the server.
    """
    with LoopbackServer({"/feed": Response(body=FEED)}) as srv:
        strict = settings(allow_private_networks=False)
        result = fetch(f"http://localhost:{srv.port}/feed", fetch_settings=strict)
        assert result.status is FetchStatus.ERROR
        assert result.error in {
            "refused: localhost (127.0.0.1) is a private address",
            "refused: localhost (::1) is a private address",
        }
        assert srv.requests == []  # no connection was ever made
        # legacy IPv4 spellings never reach a resolver and are judged from the URL
        short = fetch(f"http://127.1:{srv.port}/feed", fetch_settings=strict)
        assert short.error == "refused: 127.1 (127.0.0.1) is a private address"
        hexed = fetch(f"http://0x7f000001:{srv.port}/feed", fetch_settings=strict)
        assert hexed.error == "refused: 0x7f000001 (127.0.0.1) is a private address"
        assert srv.requests == []
        assert fetch(f"http://localhost:{srv.port}/feed").status is FetchStatus.OK


class FixedDNS(AbstractResolver):
    """A stand-in DNS server (the one part that cannot run here): fixed answers per name."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers
        self.queries: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.queries.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for ip in self.answers[host]
        ]

    async def close(self) -> None:
        pass


def test_safe_resolver_hands_aiohttp_only_public_addresses() -> None:
    dns = FixedDNS(
        {
            "mixed.test": ["10.0.0.7", "93.184.216.34", "::ffff:127.0.0.1", "2606:4700::1"],
            "inside.test": ["169.254.169.254", "fd00::1"],
        }
    )

    async def run() -> tuple[list[str], list[str], str, str]:
        strict = SafeResolver(allow_private=False, inner=dns)
        mixed = [r["host"] for r in await strict.resolve("mixed.test", 80)]
        errors = []
        for name in ("inside.test", "nowhere.test"):
            with pytest.raises(AddressRefusedError) as caught:
                await strict.resolve(name, 80)
            errors.append(str(caught.value))
        lax = SafeResolver(allow_private=True, inner=dns)
        inside = [r["host"] for r in await lax.resolve("inside.test", 80)]
        return mixed, inside, errors[0], errors[1]

    mixed, inside, refused, unknown = asyncio.run(run())
    assert mixed == ["93.184.216.34", "2606:4700::1"]
    assert refused == "refused: inside.test (169.254.169.254) is a private address"
    assert unknown == "cannot resolve host nowhere.test: Name or service not known"
    assert inside == ["169.254.169.254", "fd00::1"]


def test_non_http_schemes_refused_including_at_a_redirect_hop() -> None:
    assert (
        fetch("file:///etc/passwd").error == "refused: 'file:///etc/passwd' is not an http(s) URL"
    )
    routes = {"/r": Response(302, headers={"Location": "ftp://127.0.0.1/feed"})}
    with LoopbackServer(routes) as srv:
        result = fetch(srv.url("/r"))
    assert result.status is FetchStatus.ERROR
    assert result.error == "refused: 'ftp://127.0.0.1/feed' is not an http(s) URL"


# -- successful fetches, validators, headers ----------------------------------------------------


def test_ok_records_validators_headers_and_final_url() -> None:
    routes = {
        "/old": Response(301, headers={"Location": "/feed.xml"}),
        "/feed.xml": Response(
            body=FEED,
            headers={
                "Content-Type": "application/rss+xml; charset=utf-8",
                "ETag": '"v1"',
                "Last-Modified": "Tue, 01 Jul 2025 10:00:00 GMT",
            },
        ),
    }
    with LoopbackServer(routes) as srv:
        result = fetch(srv.url("/old"))
        assert result.status is FetchStatus.OK
        assert result.body == FEED
        assert result.url == srv.url("/old")
        assert result.final_url == srv.url("/feed.xml")
        assert result.http_status == 200
        assert result.content_type == "application/rss+xml; charset=utf-8"
        assert result.etag == '"v1"'
        assert result.last_modified == "Tue, 01 Jul 2025 10:00:00 GMT"
        assert 0 < result.elapsed < 5
        sent = srv.requests[-1].headers
        assert sent["User-Agent"].startswith("aggregator/")
        assert "application/rss+xml" in sent["Accept"]


def test_conditional_get_returns_not_modified_without_body() -> None:
    def feed(req: Request) -> Response:
        if req.headers.get("If-None-Match") == '"v1"':
            return Response(304, headers={"ETag": '"v1"'})
        return Response(body=FEED, headers={"ETag": '"v1"'})

    with LoopbackServer({"/feed": feed}) as srv:
        first = fetch(srv.url("/feed"))
        second = fetch(srv.url("/feed"), etag=first.etag, last_modified="Tue, 01 Jul 2025 GMT")
        assert srv.requests[1].headers["If-None-Match"] == '"v1"'
        assert srv.requests[1].headers["If-Modified-Since"] == "Tue, 01 Jul 2025 GMT"
    assert "If-None-Match" not in srv.requests[0].headers
    assert second.status is FetchStatus.NOT_MODIFIED
    assert second.body == b""
    assert second.http_status == 304
    assert second.etag == '"v1"'


def test_html_accept_header_is_sent() -> None:
    with LoopbackServer({"/page": Response(body=b"<html></html>")}) as srv:
        fetch(srv.url("/page"), accept=PAGE_ACCEPT)
        assert srv.requests[0].headers["Accept"] == PAGE_ACCEPT


# -- HTTP errors and Retry-After --------------------------------------------------------------


def test_http_errors_are_named() -> None:
    routes = {"/gone": Response(410, b"gone"), "/boom": Response(500, b"oops")}
    with LoopbackServer(routes) as srv:
        assert fetch(srv.url("/missing")).error == "HTTP 404 Not Found"
        assert fetch(srv.url("/gone")).error == "HTTP 410 Gone"
        boom = fetch(srv.url("/boom"))
    assert boom.status is FetchStatus.ERROR
    assert boom.http_status == 500
    assert boom.body == b""


def test_retry_after_from_429_and_503() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=600), usegmt=True)
    routes = {
        "/429": Response(429, headers={"Retry-After": "120"}),
        "/503": Response(503, headers={"Retry-After": soon}),
        "/junk": Response(503, headers={"Retry-After": "soon-ish"}),
        "/huge": Response(429, headers={"Retry-After": "99999999"}),
    }
    with LoopbackServer(routes) as srv:
        r429 = fetch(srv.url("/429"))
        r503 = fetch(srv.url("/503"))
        junk = fetch(srv.url("/junk"))
        huge = fetch(srv.url("/huge"))
    assert r429.error == "HTTP 429 Too Many Requests (retry after 120 s)"
    assert r429.retry_after == 120
    assert r503.retry_after is not None and 590 <= r503.retry_after <= 600
    assert junk.retry_after is None and junk.error == "HTTP 503 Service Unavailable"
    assert huge.retry_after == 86_400


def test_parse_retry_after_edge_cases() -> None:
    now = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("0", now) == 0
    assert parse_retry_after(" 30 ", now) == 30
    assert parse_retry_after("Tue, 01 Jul 2025 12:05:00 GMT", now) == 300
    assert parse_retry_after("Tue, 01 Jul 2025 11:00:00 GMT", now) == 0  # in the past
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after(None, now) is None


# -- redirects --------------------------------------------------------------------------------


def test_redirect_loop_stops_with_too_many_redirects() -> None:
    routes = {
        "/a": Response(302, headers={"Location": "/b"}),
        "/b": Response(302, headers={"Location": "/a"}),
    }
    with LoopbackServer(routes) as srv:
        result = fetch(srv.url("/a"), fetch_settings=settings(max_redirects=4))
        assert len(srv.requests) == 5  # the first request plus four redirects followed
    assert result.status is FetchStatus.ERROR
    assert result.error is not None
    assert result.error.startswith("too many redirects (more than 4) (redirect loop)")


def test_redirect_chain_within_limit_is_followed() -> None:
    routes: dict[str, Any] = {
        f"/{i}": Response(307, headers={"Location": f"/{i + 1}"}) for i in range(3)
    }
    routes["/3"] = Response(body=FEED)
    with LoopbackServer(routes) as srv:
        result = fetch(srv.url("/0"), fetch_settings=settings(max_redirects=3))
        too_long = fetch(srv.url("/0"), fetch_settings=settings(max_redirects=2))
    assert result.status is FetchStatus.OK and result.final_url.endswith("/3")
    assert too_long.error is not None and too_long.error.startswith("too many redirects")


# -- deadlines and size caps ------------------------------------------------------------------


def test_trickling_server_stops_at_the_overall_deadline() -> None:
    # 40 chunks, one every 0.1 s: four seconds in all, each read well within any read timeout
    trickle = Response(chunks=[b"<rss>" + b" " * 100] * 40, delay=0.1)
    with LoopbackServer({"/slow": trickle}) as srv:
        started = time.monotonic()
        result = fetch(srv.url("/slow"), fetch_settings=settings(timeout=0.8))
        took = time.monotonic() - started
    assert result.status is FetchStatus.ERROR
    assert result.error == "timed out after 0.8 s"
    assert 0.7 < took < 1.6


def test_slow_headers_hit_the_deadline() -> None:
    def slow(_req: Request) -> Response:
        time.sleep(1.5)
        return Response(body=FEED)

    with LoopbackServer({"/slow": slow}) as srv:
        result = fetch(srv.url("/slow"), fetch_settings=settings(timeout=0.5))
    assert result.error == "timed out after 0.5 s"
    assert result.elapsed < 1.2


def test_body_over_the_cap_with_honest_content_length_is_refused_unread() -> None:
    big = Response(body=b"x" * 200_000)
    with LoopbackServer({"/big": big}) as srv:
        result = fetch(srv.url("/big"), fetch_settings=settings(max_bytes=100_000))
    assert result.status is FetchStatus.ERROR
    assert result.error == "body larger than 100000 bytes (Content-Length says 200000)"


def test_body_over_the_cap_without_content_length_stops_while_streaming() -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(2_000):  # 20 MB if nobody stops it
            sent.append(1)
            yield b"y" * 10_000

    with LoopbackServer({"/big": Response(chunks=chunks())}) as srv:
        result = fetch(srv.url("/big"), fetch_settings=settings(max_bytes=100_000))
    assert result.error == "body larger than 100000 bytes"
    assert len(sent) < 1_000  # the client hung up long before the end


def test_false_small_content_length_never_yields_more_than_declared() -> None:
    # the server claims 1,000 bytes and then pours out 5 MB
    liar = Response(chunks=[b"z" * 50_000] * 100, content_length=1_000)
    with LoopbackServer({"/liar": liar}) as srv:
        result = fetch(srv.url("/liar"), fetch_settings=settings(max_bytes=100_000))
    # aiohttp either stops at the declared length or rejects the surplus as a garbled response
    if result.status is FetchStatus.OK:
        assert result.body == b"z" * 1_000
    else:
        assert result.error is not None and result.error.startswith("bad HTTP response")
        assert len(result.error) <= 300 and "\n" not in result.error
    assert result.elapsed < 2


def test_gzip_bomb_stops_at_the_decoded_cap() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000  # small on the wire
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
    with LoopbackServer({"/bomb": Response(body=bomb, headers=headers)}) as srv:
        result = fetch(srv.url("/bomb"), fetch_settings=settings(max_bytes=1_000_000))
    assert result.status is FetchStatus.ERROR
    assert result.error == "body larger than 1000000 bytes"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw deflate, no header
        ("identity", lambda data: data),
    ],
)
def test_compressed_bodies_are_decoded(encoding: str, encode: Any) -> None:
    body = FEED * 500
    headers = {"Content-Encoding": encoding}
    with LoopbackServer({"/f": Response(body=encode(body), headers=headers)}) as srv:
        result = fetch(srv.url("/f"))
        assert srv.requests[0].headers["Accept-Encoding"] == "gzip, deflate"
    assert result.status is FetchStatus.OK
    assert result.body == body


def test_concatenated_gzip_members_and_trailing_junk() -> None:
    two_members = gzip.compress(b"<rss>first half ") + gzip.compress(b"second half</rss>")
    junk_after = gzip.compress(FEED) + b"\n\0junk"
    headers = {"Content-Encoding": "gzip"}
    routes = {
        "/two": Response(body=two_members, headers=headers),
        "/junk": Response(body=junk_after, headers=headers),
    }
    with LoopbackServer(routes) as srv:
        assert fetch(srv.url("/two")).body == b"<rss>first half second half</rss>"
        assert fetch(srv.url("/junk")).body == FEED


def test_corrupt_gzip_and_unknown_encoding_are_errors() -> None:
    routes = {
        "/bad": Response(body=b"not gzip at all", headers={"Content-Encoding": "gzip"}),
        "/br": Response(body=b"\x0b\x02\x80", headers={"Content-Encoding": "br"}),
    }
    with LoopbackServer(routes) as srv:
        bad = fetch(srv.url("/bad"))
        br = fetch(srv.url("/br"))
    assert bad.error is not None and bad.error.startswith("corrupt gzip body")
    assert br.error == "unsupported Content-Encoding 'br'"


# -- connection problems ----------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_reported() -> None:
    result = fetch(f"http://127.0.0.1:{_closed_port()}/feed")
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and result.error.startswith("cannot connect to 127.0.0.1:")


def test_per_host_concurrency_is_limited() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def handler(_req: Request) -> Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return Response(body=FEED)

    async def run(url: str) -> list[FetchResult]:
        async with Fetcher(settings(per_host=2, concurrency=10)) as fetcher:
            return await asyncio.gather(*(fetcher.get(f"{url}?n={i}") for i in range(6)))

    with LoopbackServer({"/feed": handler}) as srv:
        results = asyncio.run(run(srv.url("/feed")))
    assert all(r.status is FetchStatus.OK for r in results)
    assert state["max"] == 2


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_bad_tls_certificate_is_reported(tls_server: int) -> None:
    result = fetch(f"https://127.0.0.1:{tls_server}/feed")
    assert result.status is FetchStatus.ERROR
    assert result.error is not None
    assert result.error.startswith("TLS certificate verify failed for 127.0.0.1")
