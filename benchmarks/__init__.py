"""Benchmarks behind BENCHMARKS.md: ``make bench`` runs :mod:`benchmarks.run`."""
