"""Migration path for ``spinup.utils.plot``: the plotter lives in :mod:`spinrl.results.plot`.

``main`` takes its arguments as a list (``main(["data/bench", "--save", "bench.png"])``); with none it
reads the command line, as Spinning Up's ``python -m spinup.utils.plot`` did.
"""

from spinrl.results.plot import main, make_plots

__all__ = ["main", "make_plots"]
