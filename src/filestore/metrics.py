"""Prometheus metrics: the registry, and the counters and histograms this process keeps
(requests, uploads, bytes). The gauges read from the database at scrape time are in
`gauges.py`."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Counter(
    "filestore_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "filestore_http_request_duration_seconds",
    "HTTP request duration by route",
    ["method", "route"],
    registry=REGISTRY,
)
UPLOADS = Counter(
    "filestore_uploads_total",
    "Uploads by bucket and outcome",
    ["bucket", "outcome"],
    registry=REGISTRY,
)
UPLOAD_BYTES = Counter("filestore_upload_bytes_total", "Bytes stored by uploads", registry=REGISTRY)
DOWNLOAD_BYTES = Counter(
    "filestore_download_bytes_total", "Bytes sent by downloads", registry=REGISTRY
)
UPLOAD_DURATION = Histogram(
    "filestore_upload_duration_seconds",
    "Upload duration, first byte to stored row",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
