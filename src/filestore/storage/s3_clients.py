"""The S3 clients of one deployment, built from its settings (nothing connects here).

obstore's `S3Store`, one per bucket, moves every byte; one minio client, on a urllib3 pool
of its own, does the control plane (buckets, cross-bucket copies) and resumable multipart
uploads; a second minio client only signs links, for the address clients use. The minio SDK
and urllib3 are imported only when the store is S3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from obstore.store import S3Store

from filestore.settings import Settings

if TYPE_CHECKING:
    import urllib3
    from minio import Minio

STREAM_TIMEOUT = timedelta(hours=6)
# Connections kept open to the S3 server (the minio client and tus parts): enough for a few
# uploads with UPLOAD_CONCURRENCY parts in flight each; more are opened when needed, then closed.
S3_POOL_CONNECTIONS = 16


@dataclass(frozen=True)
class S3Clients:
    stores: dict[str, S3Store]  # obstore, by bucket: every byte
    minio: Minio  # the control plane and resumable multipart uploads, over `http`
    http: urllib3.PoolManager
    signer: Minio  # signs GET links for `public_url`
    internal_url: str  # scheme://host[:port] of the store, as the API reaches it
    public_url: str  # the same for clients (MINIO_PUBLIC_ENDPOINT), which links are signed for


def build(settings: Settings, buckets: Iterable[str]) -> S3Clients:
    """The clients for `buckets` on the S3 store `settings` name."""
    import urllib3
    from minio import Minio

    endpoint = (settings.minio_endpoint or "").removeprefix("http://").removeprefix("https://")
    scheme = "https" if settings.minio_use_ssl else "http"
    timeout = timedelta(seconds=settings.storage_timeout_seconds)
    read_timeout = timedelta(seconds=settings.storage_read_timeout_seconds)
    stores = {
        bucket: S3Store(
            bucket,
            endpoint=f"{scheme}://{endpoint}",
            access_key_id=settings.minio_access_key,
            secret_access_key=settings.minio_secret_key,
            region=settings.minio_region,
            virtual_hosted_style_request=False,
            client_options={
                "allow_http": not settings.minio_use_ssl,
                "connect_timeout": timeout,
                # A stall between two reads fails; a long transfer does not. The client's
                # default 30 s *total* timeout would cut any download or import read that
                # streams for longer than that (a slow client, a 1M-row CSV).
                "read_timeout": read_timeout,
                "timeout": STREAM_TIMEOUT,
            },
            retry_config={"max_retries": 2, "retry_timeout": timeout},
        )
        for bucket in buckets
    }
    http = urllib3.PoolManager(
        # Kept-alive connections to the store. urllib3's default keeps one: every tus part
        # beyond the first in flight opened a new connection and, when it was done, logged
        # "Connection pool is full, discarding connection".
        maxsize=S3_POOL_CONNECTIONS,
        timeout=urllib3.Timeout(
            connect=settings.storage_timeout_seconds,
            read=settings.storage_read_timeout_seconds,
        ),
        retries=urllib3.Retry(total=1, backoff_factor=0.2),
    )
    minio = Minio(
        endpoint,
        access_key=settings.minio_access_key,
        secret_key=settings.minio_secret_key,
        secure=settings.minio_use_ssl,
        region=settings.minio_region,
        http_client=http,
    )
    # Signing is local arithmetic (the region is given, so minio asks the server nothing);
    # the signature covers the host, so it is made for the address clients will use.
    public = settings.minio_public_endpoint or f"{scheme}://{endpoint}"
    if "://" not in public:
        public = f"{scheme}://{public}"
    public_scheme, _, public_host = public.partition("://")
    signer = Minio(
        public_host.rstrip("/"),
        access_key=settings.minio_access_key,
        secret_key=settings.minio_secret_key,
        secure=public_scheme == "https",
        region=settings.minio_region,
    )
    return S3Clients(
        stores=stores,
        minio=minio,
        http=http,
        signer=signer,
        internal_url=f"{scheme}://{endpoint.rstrip('/')}",
        public_url=f"{public_scheme}://{public_host.rstrip('/')}",
    )
