"""Sluice auth package (see the project's DESIGN)."""
