"""Tests of the benchmark scripts behind `make bench`."""
