"""Pure-logic unit tests: no server, no database."""
