"""Spinning Up's ``spinup.utils`` import paths, kept so that a script moves over by renaming ``spinup`` to
``spinrl``. Each module here only re-exports what lives elsewhere in spinrl; new code imports from there
(``spinrl.launch.grid``, ``spinrl.record.logger``, ``spinrl.results.policy``, ``spinrl.results.plot``, ``spinrl.common.mpi``)."""
