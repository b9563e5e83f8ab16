"""Tests of the files domain."""
