"""Files: reading run and sweep folders as hostile data (:mod:`cnnlab.files.read`), and
writing records so that none is ever half-written (:mod:`cnnlab.files.atomic`, with
:mod:`cnnlab.files.background` for writes off the training thread)."""
