"""Tests of the auth domain."""
