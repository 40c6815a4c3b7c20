"""Secrets: masked once, by value, wherever cnnlab's values leave the process.

:mod:`cnnlab.secrets.mask` finds the secret values (under secret-looking keys, URL
passwords, secret environment variables) and replaces them with ``***``;
:mod:`cnnlab.secrets.callback` is the Hydra callback that records them before any file
of a run is written.
"""
