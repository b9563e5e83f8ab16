"""Tests of operations: deployment files, cleanup sweep, metrics, logs."""
