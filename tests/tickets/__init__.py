"""Tests of the tickets domain."""
