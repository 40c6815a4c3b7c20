"""cnnlab's Optuna sweeper for Hydra: ``hydra/sweeper=cnnlab_optuna``.

Config-compatible with ``hydra-optuna-sweeper`` on the current Optuna, with
pruning, resumable studies, failure tolerance and parallel workers. Importing
this package stays cheap: Optuna is imported only when a sweep starts.
"""
