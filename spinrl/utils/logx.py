"""Migration path for ``spinup.utils.logx``: the loggers live in :mod:`spinrl.logx`."""

from spinrl.logx import EpochLogger, Logger, colorize, convert_json, setup_logger_kwargs

__all__ = ["EpochLogger", "Logger", "colorize", "convert_json", "setup_logger_kwargs"]
