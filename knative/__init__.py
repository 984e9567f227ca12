"""Sluice knative package (see the project's DESIGN)."""
