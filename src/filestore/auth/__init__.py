"""Users, roles, passwords and JWT access tokens."""
