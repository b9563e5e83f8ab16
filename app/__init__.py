"""Compatibility package for the seed's `uvicorn app.main:app --reload`."""
