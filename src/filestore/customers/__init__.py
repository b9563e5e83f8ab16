"""Customers of the ISP: the records files and tickets belong to."""
