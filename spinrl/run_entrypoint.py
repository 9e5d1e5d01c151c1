"""Run one experiment described by a JSON file (used by ExperimentGrid for MPI and parallel runs)."""

from __future__ import annotations

import json
import sys

from spinrl.grid import decode_value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        spec = json.load(f)
    thunk = decode_value(spec["thunk"])
    kwargs = decode_value(spec["kwargs"])
    # JSON turns tuples into lists; hidden_sizes and similar accept either.
    thunk(**kwargs)
    return 0


if __name__ == "__main__":
    from spinrl.run import run_main_guarded

    sys.exit(run_main_guarded(main))
