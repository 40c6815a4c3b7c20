"""Experiment trackers: logger factories for the ``logger`` config group."""
