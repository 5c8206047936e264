# sparklio-bi image: Superset 6.1.0 with the bundle, installed from the lock file.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 curl pgbouncer chromium chromium-driver \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 sparklio
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY sparklio_bi ./sparklio_bi
RUN pip install --no-cache-dir -c constraints.txt .
COPY . .
RUN pip install --no-cache-dir --no-deps -e . && chown -R sparklio /app
USER sparklio
ENV SPARKLIO_DATA_DIR=/app/.data SUPERSET_CONFIG_PATH=/app/superset_config.py
EXPOSE 8088
CMD ["sparklio-bi", "serve", "--host", "0.0.0.0", "--collect-interval", "0"]
