# syntax=docker/dockerfile:1
# One image for every steamwatch service: `steamwatch run scheduler|fetcher|publisher|watchdog|notifier`,
# `steamwatch db upgrade` for the migration Job. PostgreSQL and Redis are always external here,
# so the embedded stores (the `embedded` extra) are not installed.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/steamwatch
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p shared services steamwatch simulator \
    && touch shared/__init__.py services/__init__.py steamwatch/__init__.py simulator/__init__.py \
    && /opt/steamwatch/bin/pip install . \
    && /opt/steamwatch/bin/pip uninstall --yes steamwatch
COPY shared ./shared
COPY services ./services
COPY steamwatch ./steamwatch
COPY simulator ./simulator
RUN /opt/steamwatch/bin/pip install --no-deps . \
    && /opt/steamwatch/bin/python -m compileall -q /opt/steamwatch/lib

FROM ${PYTHON_IMAGE}
# tini as PID 1 (without -g): it reaps zombies and passes SIGTERM to steamwatch alone, which
# execs the dramatiq CLI for the workers, so dramatiq's main process gets the signal and
# drains its workers (a signal to the whole group would send them down the kill path).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends tini=0.19.* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 steamwatch \
    && useradd --system --uid 10001 --gid steamwatch --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin steamwatch
COPY --from=build /opt/steamwatch /opt/steamwatch
ENV PATH=/opt/steamwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STEAMWATCH_LOG_FORMAT=json \
    STEAMWATCH_METRICS_PORT=9100 \
    TMPDIR=/tmp
USER 10001:10001
WORKDIR /tmp
# 9100: every service's health and metrics; 8080: the API (`steamwatch run api`).
EXPOSE 9100 8080
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/tini", "--", "steamwatch"]
CMD ["--help"]
