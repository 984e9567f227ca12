# The Sluice image: the gateway (python -m gateway) and the workers (python -m workers) that
# `sluice deploy` runs on Knative. Build it from a checkout:
#   docker build -t sluice:0.1.0 .
# Applications add their python/ folder on top of it with `sluice image APP_DIR`.
FROM python:3.11-slim
WORKDIR /opt/sluice
COPY pyproject.toml README.md ./
COPY sluice ./sluice
COPY gateway ./gateway
COPY workers ./workers
COPY knative ./knative
COPY auth ./auth
COPY langstream ./langstream
RUN pip install --no-cache-dir . && useradd --uid 1000 --no-create-home sluice \
    && mkdir -p /app/python /persistent-state && chown 1000 /persistent-state
WORKDIR /app
USER 1000
ENV PYTHONUNBUFFERED=1
