"""Migration path for ``spinup.utils.run_utils``: the experiment grid lives in :mod:`spinrl.launch.grid`."""

from spinrl.launch.grid import ExperimentGrid, call_experiment, valid_str
from spinrl.record.folder import setup_logger_kwargs

__all__ = ["ExperimentGrid", "call_experiment", "setup_logger_kwargs", "valid_str"]
