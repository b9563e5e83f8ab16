"""The staff console: a web page at `/console`, a client of the public API."""
