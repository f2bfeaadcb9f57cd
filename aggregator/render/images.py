"""Lead images: each story's image fetched once through the crawler's safe fetcher (its address
checks and size caps), shrunk with Pillow to a small WebP thumbnail and kept in a cache folder
(keyed by the URL's hash) beside the site's data, so later renders copy it instead of fetching
again. The site serves its own copy: no page ever points at a remote image.

A broken image, something that is not an image, one over the size cap or on a refused address
is skipped with one log line (and remembered, so it is not fetched on every render) and never
breaks the render."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aggregator.settings import FetchSettings

log = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 320  # pixels: a thumbnail beside a headline, sharp on a phone
THUMBNAIL_MAX_HEIGHT = 320  # a tall image is shrunk to this height instead
IMAGE_MAX_BYTES = 5_000_000  # an image body larger than this is not fetched further
IMAGE_MAX_PIXELS = 40_000_000  # a decompression bomb (a tiny file of a huge picture) is refused
RETRY_FAILED_AFTER = 24 * 3600.0  # seconds before an image that failed is tried again
IMAGE_ACCEPT = "image/webp, image/avif, image/jpeg, image/png, image/gif;q=0.8, */*;q=0.1"


@dataclass(frozen=True)
class Thumbnail:
    """A stored thumbnail, ready to be published in the site."""

    name: str  # file name under images/: "<hash of the URL>.webp"
    data: bytes
    width: int
    height: int


def image_name(url: str) -> str:
    """The thumbnail's file name: the hash of the image URL (the same URL, the same file)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".webp"


def thumbnail(data: bytes, width: int = THUMBNAIL_WIDTH) -> tuple[bytes, int, int]:
    """Image bytes -> (WebP bytes, width, height), shrunk to ``width`` pixels wide at most.

    ValueError when the bytes are not an image Pillow can read, or a picture too large."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > IMAGE_MAX_PIXELS:
                    raise ValueError(f"{image.width}x{image.height} pixels is too large")
                image.draft("RGB", (width * 2, width * 2))  # JPEG: decode at a smaller scale
                picture = image.convert("RGBA" if _has_alpha(image) else "RGB")
    except (
        OSError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise ValueError(f"not an image Pillow can read: {exc}") from exc
    picture.thumbnail((width, THUMBNAIL_MAX_HEIGHT), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="WEBP", quality=75, method=4)
    return out.getvalue(), picture.width, picture.height


def _has_alpha(image: object) -> bool:
    mode = getattr(image, "mode", "")
    info = getattr(image, "info", {})
    return mode in {"RGBA", "LA", "PA"} or (mode == "P" and "transparency" in info)


class ImageCache:
    """Thumbnails kept across renders in one folder: ``<hash>.webp`` for each image made,
    ``<hash>.failed`` (holding the reason) for each that could not be, tried again after
    RETRY_FAILED_AFTER seconds."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, url: str) -> Thumbnail | None:
        path = self.folder / image_name(url)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return _stored(path.name, data)

    def failed_recently(self, url: str, now: float) -> bool:
        marker = (self.folder / image_name(url)).with_suffix(".failed")
        try:
            return now - marker.stat().st_mtime < RETRY_FAILED_AFTER
        except OSError:
            return False

    def put(self, url: str, data: bytes) -> Thumbnail:
        made, width, height = thumbnail(data)
        self._write(image_name(url), made)
        return Thumbnail(image_name(url), made, width, height)

    def fail(self, url: str, reason: str) -> None:
        name = os.path.splitext(image_name(url))[0] + ".failed"
        self._write(name, reason.encode("utf-8", "replace"))

    def _write(self, name: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{name}.{os.getpid()}.partial"
        partial.write_bytes(data)
        os.replace(partial, self.folder / name)  # a reader never sees half a thumbnail


def _stored(name: str, data: bytes) -> Thumbnail | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return Thumbnail(name, data, image.width, image.height)
    except (OSError, SyntaxError):
        return None  # a damaged file in the cache: made again


def thumbnails(urls: Iterable[str], cache_dir: Path, fetch: FetchSettings) -> dict[str, Thumbnail]:
    """The thumbnail of each image URL: from the cache, else fetched (once, concurrently, through
    the crawler's fetcher) and made; the URLs that fail are left out, each logged once."""
    cache = ImageCache(cache_dir)
    wanted = list(dict.fromkeys(u for u in urls if u))
    found: dict[str, Thumbnail] = {}
    missing: list[str] = []
    now = time.time()
    for url in wanted:
        stored = cache.get(url)
        if stored is not None:
            found[url] = stored
        elif not cache.failed_recently(url, now):
            missing.append(url)
    if missing:
        found.update(asyncio.run(_fetch_all(missing, cache, fetch)))
    return found


async def _fetch_all(
    urls: list[str], cache: ImageCache, settings: FetchSettings
) -> Mapping[str, Thumbnail]:
    from aggregator.crawl.fetch import Fetcher
    from aggregator.records import FetchStatus

    capped = settings.model_copy(update={"max_bytes": min(settings.max_bytes, IMAGE_MAX_BYTES)})
    made: dict[str, Thumbnail] = {}
    async with Fetcher(capped) as fetcher:
        results = await asyncio.gather(*(fetcher.get(u, accept=IMAGE_ACCEPT) for u in urls))
    for url, result in zip(urls, results, strict=True):
        if result.status is not FetchStatus.OK:
            reason = result.error or f"HTTP {result.http_status}"
        else:
            try:
                made[url] = await asyncio.to_thread(cache.put, url, result.body)
                continue
            except ValueError as exc:
                reason = str(exc)
        log.warning("lead image %s skipped: %s", url, reason, extra={"url": url})
        cache.fail(url, reason)
    return made
