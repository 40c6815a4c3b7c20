"""Files: reading run and sweep folders as hostile data (:mod:`cnnlab.files.read`)."""
