"""Run one experiment described by a JSON file (used by ExperimentGrid for MPI, parallel and Ray runs).

    python -m spinrl.run_entrypoint data/exp/exp_s0/variant.json

The file holds ``{"thunk": {"__callable__": "module:function"}, "kwargs": {...}}``: plain data, so
reading it runs no code other than importing the named module.
"""

from __future__ import annotations

import json
import sys

from spinrl.errors import UserError
from spinrl.grid import decode_value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise UserError("usage: python -m spinrl.run_entrypoint SPEC.json")
    try:
        with open(argv[0]) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the run spec {argv[0]}: {e}") from None
    # The grid sets a thread budget per process so that parallel runs share the cores.
    from spinrl.runtime import set_thread_budget

    set_thread_budget()
    thunk = decode_value(spec["thunk"])
    # JSON turns tuples into lists; hidden_sizes and similar accept either.
    kwargs = decode_value(spec["kwargs"])
    thunk(**kwargs)
    return 0


if __name__ == "__main__":
    from spinrl.run import run_main_guarded

    sys.exit(run_main_guarded(main))
