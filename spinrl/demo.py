"""``make demo``: train PPO on CartPole-v1 for about a minute, then plot its learning curve."""

from __future__ import annotations

import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from spinrl.algos.ppo import ppo
    from spinrl.record.folder import setup_logger_kwargs

    # A datestamped run folder, so running the demo again never touches an earlier run.
    logger_kwargs = setup_logger_kwargs("demo-ppo-cartpole", seed=0, datestamp=True)
    run_dir = logger_kwargs["output_dir"]
    print(f"Training PPO on CartPole-v1; the run goes to {run_dir}", flush=True)
    start = time.time()
    ppo(
        "CartPole-v1",
        seed=0,
        steps_per_epoch=4000,
        epochs=15,
        pi_lr=1e-3,
        num_envs=4,
        logger_kwargs=logger_kwargs,
    )
    plot_path = os.path.join(run_dir, "learning_curve.png")
    from spinrl.results.plot import main as plot_main

    plot_main([run_dir, "--value", "AverageEpRet", "--save", plot_path])
    print(f"\nTrained in {time.time() - start:.0f} s.")
    print(f"Run directory: {run_dir}")
    print(f"Learning curve: {plot_path}")
    print(f"Watch the agent: .venv/bin/spinrl test_policy {run_dir} --episodes 5 --deterministic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
