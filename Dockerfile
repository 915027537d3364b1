# tokenwatch: slim, non-root, with a health check on /healthz
FROM python:3.11-slim AS base

# HTTP_HOST=0.0.0.0: reachable through the published port (docker-compose.yml repeats it in
# `environment:` so an .env cannot override it). /app/data holds SQLite and console pictures:
# mount a volume there (docker-compose.yml does).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HTTP_HOST=0.0.0.0 HTTP_PORT=8080 STATUS_LINE=false

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY app ./app
COPY tokenwatch ./tokenwatch
COPY tokens ./tokens
COPY simulator ./simulator
COPY bot ./bot
COPY delivery ./delivery
COPY monitoring ./monitoring
COPY alerts ./alerts
COPY charts ./charts
COPY recovery ./recovery
COPY migrations ./migrations
RUN pip install -c constraints.txt . \
 && useradd --create-home --uid 10001 tokenwatch \
 && mkdir -p /app/data && chown tokenwatch /app/data

USER tokenwatch
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"HTTP_PORT\",\"8080\")}/healthz', timeout=4)" || exit 1
ENTRYPOINT ["tokenwatch"]
CMD ["run"]
