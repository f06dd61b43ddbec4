# FlowPilot Chat — production image. Runs as a non-root user; point DATABASE_URL at your Postgres.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 PORT=3978 FLOWPILOT_LOG_FORMAT=json

RUN useradd --create-home --uid 10001 flowpilot
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY core ./core
COPY adapters ./adapters
COPY storage ./storage
COPY migrations ./migrations
COPY manifest ./manifest
RUN pip install --no-cache-dir . && chown -R flowpilot /app

USER flowpilot
EXPOSE 3978
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import os,urllib.request,sys; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"3978\")}/healthz', timeout=2).status == 200 else 1)"
CMD ["flowpilot", "serve"]
