"""Figures for the console's Overview screen: storage, uploads and imports per day."""
