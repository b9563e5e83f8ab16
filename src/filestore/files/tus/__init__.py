"""Resumable uploads: tus 1.0.0 at `/files/tus/` (core, creation, creation-with-upload,
creation-defer-length, termination, expiration, checksum)."""
