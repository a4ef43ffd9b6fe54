# One image for every cryptochart process (producer, inserter, minute job, API); compose.yaml
# picks the command. The chart is built in a Node stage and served by the API.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cryptochart/ cryptochart/
COPY ingest/ ingest/
COPY api/ api/
COPY db/ db/
RUN pip install .
COPY --from=frontend /src/frontend/dist frontend/dist
RUN useradd --system --uid 10001 cryptochart
USER cryptochart
EXPOSE 8000
ENTRYPOINT ["cryptochart"]
CMD ["--help"]
