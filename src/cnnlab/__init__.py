"""cnnlab: config-driven experiments for convolutional networks.

Hydra composes the config groups under ``conf/`` into a Lightning module and
data module; ``cnnlab <task>`` runs them. Heavy libraries (torch, lightning)
are imported by the tasks, not here, so ``cnnlab --help`` stays fast.
"""

__version__ = "0.1.0"

# Registers ${cnnlab.cwd:} (conf/paths) wherever cnnlab's code runs; omegaconf only.
import cnnlab.config  # noqa: F401
