"""Sluice gateway package (see the project's DESIGN)."""
