# The aggregator image: `aggregator schedule` (the daemon) by default; any command works, e.g.
#   docker run --rm -v ./sources.yaml:/config/sources.yaml:ro -v news-data:/data IMAGE status
# compose.yaml runs it with PostgreSQL and a web server. Built from this checkout with the
# versions constraints.txt pins; the image holds the installed package, not the source.
ARG PYTHON=3.12

FROM python:${PYTHON}-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY aggregator ./aggregator
COPY templates ./templates
COPY prompts ./prompts
# The wheel, built by the pinned hatchling (no build isolation: it would fetch its own).
RUN pip install --no-cache-dir --constraint constraints.txt hatchling \
 && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist .

FROM python:${PYTHON}-slim
COPY --from=build /dist/ /tmp/dist/
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt /tmp/dist/*.whl \
 && rm -rf /tmp/dist /tmp/constraints.txt \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin aggregator \
 && mkdir -p /config /data /srv/site \
 && chown aggregator:aggregator /data /srv/site
# The editor's sources.yaml is mounted at /config; the database (SQLite, unless
# AGGREGATOR_DB_URL points at PostgreSQL), the run lock and the health file live in /data; the
# site is /srv/site/html, a link to the live release beside it in the same volume (a web server
# mounting the volume serves it; it must follow symlinks, as nginx does by default).
ENV AGGREGATOR_CONFIG=/config/sources.yaml \
    AGGREGATOR_DATA_DIR=/data \
    AGGREGATOR_OUTPUT_DIR=/srv/site/html \
    AGGREGATOR_HEALTH_FILE=/data/health.json \
    PYTHONUNBUFFERED=1
VOLUME ["/data", "/srv/site"]
USER aggregator
WORKDIR /data
# Unhealthy when the crawl or the digest has not succeeded for 2 hours.
HEALTHCHECK --interval=5m --timeout=30s --start-period=15m \
    CMD ["aggregator", "status", "--healthcheck", "--max-age", "2"]
# `docker stop` sends SIGTERM: the daemon finishes its current stage and exits 0 (compose
# gives it stop_grace_period to do so).
ENTRYPOINT ["aggregator"]
CMD ["schedule"]
