# The API image: docker compose up --build (see docker-compose.yml).

# The web app (docs/web.md), built from the committed lock file and the spec
# it generates its client from; only its output goes into the image.
FROM node:20-slim AS web
WORKDIR /src
COPY web/package.json web/package-lock.json ./web/
RUN npm ci --prefix web --no-audit --no-fund
COPY openapi/openapi.json ./openapi/openapi.json
COPY web ./web
RUN npm run build --prefix web

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# The dependencies first, at the versions of requirements.lock, so this layer
# is rebuilt only when pyproject.toml or the lock file changes. The dev extra
# is left out.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -c requirements.lock -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code runs from /app rather than being installed into site-packages:
# the migrate command finds alembic.ini and migrations/ beside app/.
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# Served at /app/ (WEB_DIST_DIR defaults to web/dist beside app/).
COPY --from=web /src/web/dist ./web/dist

RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent hulian
USER hulian

EXPOSE 8000
CMD ["python", "-m", "app", "serve", "--host", "0.0.0.0", "--port", "8000"]
