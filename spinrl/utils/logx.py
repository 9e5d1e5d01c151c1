"""Migration path for ``spinup.utils.logx``: the loggers live in :mod:`spinrl.record.logger`."""

from spinrl.record.logger import EpochLogger, Logger, colorize, convert_json, setup_logger_kwargs

__all__ = ["EpochLogger", "Logger", "colorize", "convert_json", "setup_logger_kwargs"]
