# Filestore image: API (`filestore serve`) and worker (`filestore worker`) in one slim image.
# Build: docker build -t filestore .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
COPY app ./app
COPY alembic.ini ./
RUN python -m venv /opt/filestore \
    && /opt/filestore/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/filestore/bin/pip install --no-cache-dir -c requirements.lock .

FROM python:3.11-slim
RUN groupadd --system filestore && useradd --system --gid filestore --home /srv/filestore filestore \
    && mkdir -p /srv/filestore && chown filestore:filestore /srv/filestore
COPY --from=build /opt/filestore /opt/filestore
COPY --chown=filestore:filestore alembic.ini /srv/filestore/
ENV PATH=/opt/filestore/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FILESTORE_DATA_DIR=/srv/filestore/data
WORKDIR /srv/filestore
USER filestore
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"
CMD ["filestore", "serve", "--host", "0.0.0.0", "--port", "8000"]
