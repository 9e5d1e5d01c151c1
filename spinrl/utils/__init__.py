"""Spinning Up's ``spinup.utils`` import paths, kept so that a script moves over by renaming ``spinup`` to
``spinrl``. Each module here only re-exports what lives elsewhere in spinrl; new code imports from there
(``spinrl.grid``, ``spinrl.logx``, ``spinrl.test_policy``, ``spinrl.plot``, ``spinrl.mpi``)."""
