# The Sluice images: the gateway (python -m gateway) and the workers (python -m workers) that
# `sluice deploy` runs on Knative. Build them from a checkout:
#   docker build --target sluice -t sluice:0.1.0 .              # every application
#   docker build --target camel -t sluice-camel:0.1.0 .         # with a JRE and Maven, for
#                                                               # applications with camel-source
# Applications add their python/ folder on top with `sluice image APP_DIR`; one with
# python/requirements.txt gets its own environment built there by uv, a dependency of Sluice
# installed here (checked by `uv --version`).
FROM python:3.11-slim AS sluice
WORKDIR /opt/sluice
COPY pyproject.toml README.md ./
COPY sluice ./sluice
COPY gateway ./gateway
COPY workers ./workers
COPY knative ./knative
COPY auth ./auth
COPY langstream ./langstream
RUN pip install --no-cache-dir . && uv --version && useradd --uid 1000 --create-home sluice \
    && mkdir -p /app/python /persistent-state && chown 1000 /persistent-state
WORKDIR /app
USER 1000
ENV PYTHONUNBUFFERED=1

FROM sluice AS camel
USER root
RUN apt-get update && apt-get install -y --no-install-recommends default-jre-headless maven \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /opt/camel && chown 1000 /opt/camel
USER 1000
ENV SLUICE_CAMEL_CACHE_DIR=/opt/camel
