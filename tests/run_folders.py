"""Run folders written by hand, as the logger writes them, and the ways their files can be damaged: the
fixtures of the commands that read runs (spinrl plot, ls, compare)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_run(
    run_dir: Path, algo: str, env: str, seed: int, returns: list[float], status: str = "finished", **extra
) -> Path:
    """A run folder as the logger writes it: progress.txt, config.json, status.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = ["Epoch\tAverageEpRet\tStdEpRet\tTotalEnvInteracts\tTime"]
    rows += [f"{i}\t{r}\t1.0\t{1000 * (i + 1)}\t{0.5 * i}" for i, r in enumerate(returns)]
    (run_dir / "progress.txt").write_text("\n".join(rows) + "\n")
    config = dict(algo=algo, env_name=env, seed=seed, exp_name=run_dir.parent.name, epochs=len(returns))
    (run_dir / "config.json").write_text(json.dumps(config))
    info = dict(
        status=status, epoch=len(returns), epochs=len(returns), pid=os.getpid(), hostname=os.uname().nodename
    )
    (run_dir / "status.json").write_text(json.dumps(dict(info, **extra)))
    return run_dir


# Ways a run's files can be damaged; listings must skip such a run with a warning and go on.
DAMAGE = {
    "binary progress.txt": ("progress.txt", b"\x89PNG\r\n\x1a\n\x00\xff\xfe"),
    "config.json not JSON": ("config.json", b'{"algo": "ppo", "seed": '),
    "config.json a list": ("config.json", b"[1, 2, 3]"),
    "binary config.json": ("config.json", b"\xff\xfe\x00\x01"),
}


def damage(run_dir: Path, how: str) -> Path:
    name, content = DAMAGE[how]
    (run_dir / name).write_bytes(content)
    return run_dir


def assert_warned_about(err: str, run_dirs: list[Path]) -> None:
    """One ``spinrl: warning: skipping RUN: ...`` line per damaged run, and nothing else on stderr."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == len(run_dirs), err
    for run_dir in run_dirs:
        assert sum(line.startswith(f"spinrl: warning: skipping {run_dir}:") for line in lines) == 1, err
