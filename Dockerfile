# syntax=docker/dockerfile:1
# One image for every AutoCRM process (web, worker, beat, migrate); docker-compose.yml picks the
# command. Front-end assets come from the npm registry at build time, never from a CDN at run time.

FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && mkdir -p /assets/swagger-ui \
 && cd node_modules/swagger-ui-dist \
 && cp swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js LICENSE NOTICE \
       /assets/swagger-ui/

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AUTOCRM_INSTANCE_PATH=/app/instance
RUN useradd --system --create-home --home-dir /home/autocrm autocrm
WORKDIR /app
# Only what the application needs (the build context may hold .venv/ and node_modules/).
COPY pyproject.toml README.md wsgi.py celeryconfig.py ./
COPY autocrm/ autocrm/
COPY workflows/ workflows/
COPY workers/ workers/
COPY api/ api/
COPY web/ web/
COPY migrations/ migrations/
COPY --from=assets /assets/ web/static/vendor/
RUN pip install . \
 && mkdir -p /app/instance \
 && chown autocrm:autocrm /app/instance
USER autocrm
EXPOSE 8000
# The web server (eventlet unless AUTOCRM_ASYNC_MODE says gevent); see autocrm/server.py.
CMD ["python", "-m", "autocrm.server", "--host", "0.0.0.0", "--port", "8000"]
