"""Support tickets, the owners of ticket media."""
