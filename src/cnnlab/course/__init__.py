"""The course module's experiments, run for real: grid vs random vs TPE on a known function
(:mod:`~cnnlab.course.compare`), and the material's comparisons as sweeps through
``cnnlab train -m`` whose studies feed ``cnnlab compare-search mode=train`` and
``docs/experiments.md`` (:mod:`~cnnlab.course.catalogue`, :mod:`~cnnlab.course.studies`,
:mod:`~cnnlab.course.search`, :mod:`~cnnlab.course.page`)."""
