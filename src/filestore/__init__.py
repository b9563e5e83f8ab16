"""Filestore: streaming file storage for the ISP platform on PostgreSQL and S3/MinIO."""

__version__ = "0.1.0"
