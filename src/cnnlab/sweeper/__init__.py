"""The sweeper's internals: what cnnlab's Optuna sweeper (``hydra/sweeper=cnnlab_optuna``,
in ``hydra_plugins.cnnlab_optuna_sweeper``) does around its trials.

Seeded samplers (:mod:`~cnnlab.sweeper.samplers`), the report, plots and ``best.yaml``
(:mod:`~cnnlab.sweeper.report`), ``optimization_results.yaml``
(:mod:`~cnnlab.sweeper.results`) and the sweep's own W&B run
(:mod:`~cnnlab.sweeper.wandb_sweep`). What a trial does is in :mod:`cnnlab.sweep`.
"""
