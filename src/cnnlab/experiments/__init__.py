"""The material's experiments, run for real: sweeps through ``cnnlab train -m`` whose
studies feed ``cnnlab compare-search mode=train`` and ``docs/experiments.md``."""
