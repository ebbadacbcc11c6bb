"""Fault scenarios on real processes: see README.md."""
