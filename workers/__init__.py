"""Sluice workers package (see the project's DESIGN)."""
