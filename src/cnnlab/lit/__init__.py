"""Training with Lightning: the LightningModule (:mod:`~cnnlab.lit.module`), its loss,
metrics, optimizer and schedule, the callbacks and the CSV logger of a run, and checkpoints
read without running anything they name (:mod:`~cnnlab.lit.checkpoint`)."""
