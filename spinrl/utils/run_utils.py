"""Migration path for ``spinup.utils.run_utils``: the experiment grid lives in :mod:`spinrl.grid`."""

from spinrl.grid import ExperimentGrid, call_experiment, valid_str
from spinrl.rundir import setup_logger_kwargs

__all__ = ["ExperimentGrid", "call_experiment", "setup_logger_kwargs", "valid_str"]
