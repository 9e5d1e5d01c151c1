"""Spinning Up's documented examples, run on spinrl after only the renames the migration page lists.

Each example below is kept as Spinning Up shows it (its commands and Python, with ``spinup`` names);
:func:`migrate` applies the renames of ``docs/user/from-spinning-up.md`` and nothing else. Training budgets
are then cut to a few hundred steps (:func:`tiny`), which changes how long the examples run, not what they
call. Every example must run and leave what Spinning Up's would: runs named as Spinning Up names them,
and a policy that ``test_policy`` loads.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from spinrl.cli import main
from spinrl.common.errors import run_main_guarded

ROOT = Path(__file__).resolve().parents[1]

# The renames, in the order docs/user/from-spinning-up.md lists them.
RENAMES: list[tuple[str, str]] = [
    (r"python -m spinup\.run ", "spinrl "),  # the command line
    (r"\bspinup\b", "spinrl"),  # the package: from spinup import ..., spinup.utils.*
    (r"^(\s*)import gym$", r"\1import gymnasium as gym"),  # Gym became Gymnasium
    (r"\bLunarLander(Continuous)?-v2\b", r"LunarLander\1-v3"),  # Box2D ids
    (
        r"\b(Ant|HalfCheetah|Hopper|Humanoid|HumanoidStandup|Swimmer|Walker2d|Reacher|Pusher)-v[234]\b",
        r"\1-v5",
    ),
]


def migrate(text: str) -> str:
    """A Spinning Up command or script, with the migration page's renames applied."""
    for pattern, replacement in RENAMES:
        text = re.sub(pattern, replacement, text, flags=re.M)
    return text


def tiny(command: str, epochs: int = 1, steps: int = 200) -> str:
    """The same command with a training budget of a few seconds."""
    return f"{command} --epochs {epochs} --steps_per_epoch {steps} --train_pi_iters 2 --train_v_iters 2"


def spinrl(command: str) -> int:
    """Run a migrated command line (``spinrl ...``) in this process; its exit code."""
    argv = shlex.split(command)
    assert argv[0] == "spinrl", command
    return run_main_guarded(main, argv[1:])


def test_the_renames():
    assert migrate("python -m spinup.run ppo --env LunarLander-v2") == "spinrl ppo --env LunarLander-v3"
    assert migrate("from spinup.utils.run_utils import ExperimentGrid") == (
        "from spinrl.utils.run_utils import ExperimentGrid"
    )
    assert migrate("import gym\n    import gym") == "import gymnasium as gym\n    import gymnasium as gym"
    assert migrate("--env Walker2d-v2 Hopper-v3 CartPole-v0") == "--env Walker2d-v5 Hopper-v5 CartPole-v0"


# ----- docs/user/installation.rst: check your install, watch the policy, plot it -----------------------------
def test_installation_check(tmp_data, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    train = (
        'python -m spinup.run ppo --hid "[32,32]" --env LunarLander-v2 --exp_name installtest --gamma 0.999'
    )
    assert spinrl(tiny(migrate(train))) == 0
    run = tmp_data / "data" / "installtest" / "installtest_s0"
    config = json.loads((run / "config.json").read_text())
    assert config["env_name"] == "LunarLander-v3" and config["gamma"] == 0.999
    assert config["ac_kwargs"]["hidden_sizes"] == [32, 32]
    capsys.readouterr()
    assert spinrl(migrate("python -m spinup.run test_policy data/installtest/installtest_s0") + " -n 2") == 0
    assert capsys.readouterr().out.count("Episode ") == 2
    # Without a display spinrl asks for a file rather than opening a window.
    plot = migrate("python -m spinup.run plot data/installtest/installtest_s0")
    assert spinrl(plot) == 2 and "--save" in capsys.readouterr().err
    assert spinrl(f"{plot} --save curve.png") == 0 and (tmp_data / "curve.png").stat().st_size > 1000


# ----- docs/user/running.rst: the detailed quickstart, with a user shorthand and a datestamp ----------------
def test_detailed_quickstart(tmp_data):
    command = (
        "python -m spinup.run ppo --exp_name ppo_ant --env Ant-v2 --clip_ratio 0.1 0.2 "
        "--hid[h] [32,32] [64,32] --act torch.nn.Tanh --seed 0 10 20 --dt --data_dir path/to/data"
    )
    assert spinrl(tiny(migrate(command), steps=60)) == 0
    runs = sorted(
        p.relative_to(tmp_data / "path/to/data").as_posix() for p in (tmp_data / "path/to/data").glob("*/*")
    )
    assert len(runs) == 12
    # The run with clip_ratio 0.1, hidden sizes [32,32] and seed 10, where Spinning Up's running page puts it.
    date, stamp = r"\d{4}-\d{2}-\d{2}", r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}"
    pattern = re.compile(rf"{date}_ppo_ant_cli0-1_h32-32/{stamp}-ppo_ant_cli0-1_h32-32_s10")
    assert sum(bool(pattern.fullmatch(r)) for r in runs) == 1, runs
    names = {r.split("/")[0][11:] for r in runs}
    assert names == {f"ppo_ant_cli{c}_h{h}" for c in ("0-1", "0-2") for h in ("32-32", "64-32")}


def test_pytorch_and_tensorflow_names(tmp_data, capsys):
    assert spinrl(tiny(migrate("python -m spinup.run ppo_pytorch --env CartPole-v0 --exp_name pyt"))) == 0
    assert (tmp_data / "data/pyt/pyt_s0/config.json").exists()
    assert spinrl(migrate("python -m spinup.run ppo_tf1 --env CartPole-v0")) == 2
    assert "no TensorFlow versions" in capsys.readouterr().err


# ----- spinup/examples/pytorch/bench_ppo_cartpole.py: the ExperimentGrid example ------------------------------
BENCH_PPO_CARTPOLE = (
    "from spinup.utils.run_utils import ExperimentGrid\n"
    "from spinup import ppo_pytorch\n"
    "import torch\n"
    "\n"
    "if __name__ == '__main__':\n"
    "    import argparse\n"
    "    parser = argparse.ArgumentParser()\n"
    "    parser.add_argument('--cpu', type=int, default=4)\n"
    "    parser.add_argument('--num_runs', type=int, default=3)\n"
    "    args = parser.parse_args()\n"
    "\n"
    "    eg = ExperimentGrid(name='ppo-pyt-bench')\n"
    "    eg.add('env_name', 'CartPole-v0', '', True)\n"
    "    eg.add('seed', [10*i for i in range(args.num_runs)])\n"
    "    eg.add('epochs', 10)\n"
    "    eg.add('steps_per_epoch', 4000)\n"
    "    eg.add('ac_kwargs:hidden_sizes', [(32,), (64,64)], 'hid')\n"
    "    eg.add('ac_kwargs:activation', [torch.nn.Tanh, torch.nn.ReLU], '')\n"
    "    eg.run(ppo_pytorch, num_cpu=args.cpu)\n"
)


def test_bench_ppo_cartpole_grid(tmp_path):
    script = migrate(BENCH_PPO_CARTPOLE)
    # The budget, through the grid: one epoch of 200 steps, two policy and value iterations.
    script = script.replace("eg.add('epochs', 10)", "eg.add('epochs', 1)")
    script = script.replace("4000)", "200)\n    eg.add('train_pi_iters', 2)\n    eg.add('train_v_iters', 2)")
    (tmp_path / "bench_ppo_cartpole.py").write_text(script)
    env = {"PYTHONPATH": str(ROOT), "SPINRL_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "bench_ppo_cartpole.py", "--cpu", "1", "--num_runs", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted(p.relative_to(tmp_path / "data").as_posix() for p in (tmp_path / "data").glob("*/*"))
    assert runs == [
        f"ppo-pyt-bench_cartpole-v0_hid{h}_{a}/ppo-pyt-bench_cartpole-v0_hid{h}_{a}_s{s}"
        for h in ("32", "64-64")
        for a in ("relu", "tanh")
        for s in (0, 10)
    ]


# ----- docs/user/running.rst: launching from a script with an env function --------------------------------
LAUNCH_FROM_SCRIPT = (
    "from spinup import ppo_pytorch as ppo\n"
    "import torch\n"
    "import gym\n"
    "\n"
    "env_fn = lambda : gym.make('LunarLander-v2')\n"
    "\n"
    "ac_kwargs = dict(hidden_sizes=[64,64], activation=torch.nn.ReLU)\n"
    "\n"
    "logger_kwargs = dict(output_dir='path/to/output_dir', exp_name='experiment_name')\n"
    "\n"
    "ppo(env_fn=env_fn, ac_kwargs=ac_kwargs, steps_per_epoch=5000, epochs=250, logger_kwargs=logger_kwargs)\n"
)


def test_launch_from_a_script_then_watch_it(tmp_data, capsys):
    script = migrate(LAUNCH_FROM_SCRIPT).replace(
        "steps_per_epoch=5000, epochs=250", "steps_per_epoch=200, epochs=1"
    )
    exec(compile(script, "launch_from_script.py", "exec"), {"__name__": "__main__"})
    # The env came from a lambda: config.json records its Gymnasium id, so test_policy needs nothing more.
    config = json.loads((tmp_data / "path/to/output_dir/config.json").read_text())
    assert config["env_spec"]["id"] == "LunarLander-v3" and config["exp_name"] == "experiment_name"
    capsys.readouterr()
    command = "python -m spinup.run test_policy path/to/output_dir -l 30 -n 3 -nr -d"
    assert spinrl(migrate(command)) == 0
    out = capsys.readouterr().out
    assert out.count("Episode ") == 3 and "AverageEpRet" in out


# ----- docs/user/saving_and_loading.rst: loading from Python, flags of test_policy ---------------------------
def test_load_policy_and_env_then_run_policy(tmp_data, capsys):
    assert spinrl(tiny(migrate("python -m spinup.run ppo --env CartPole-v0 --exp_name saved"))) == 0
    code = migrate(
        "from spinup.utils.test_policy import load_policy_and_env, run_policy\n"
        "import gym\n"
        "_, get_action = load_policy_and_env('data/saved/saved_s0')\n"
        "env = gym.make('CartPole-v0')\n"
        "run_policy(env, get_action)\n"
    )
    capsys.readouterr()
    exec(compile(code, "watch.py", "exec"), {})
    out = capsys.readouterr().out
    assert out.count("Episode ") == 100 and "MaxEpRet" in out  # Spinning Up's default: 100 episodes


# ----- docs/utils/logger.rst: a hand-written loop with its logger, in PyTorch ---------------------------------
HAND_WRITTEN_LOOP = (
    "import time\n"
    "import numpy as np\n"
    "import torch\n"
    "import gym\n"
    "from spinup.utils.logx import EpochLogger\n"
    "from spinup.algos.pytorch.ppo.core import MLPActorCritic\n"
    "\n"
    "def train(env_name='CartPole-v0', epochs=3, steps_per_epoch=100, logger_kwargs=dict(), save_freq=1):\n"
    "    logger = EpochLogger(**logger_kwargs)\n"
    "    logger.save_config(locals())\n"
    "    env = gym.make(env_name)\n"
    "    ac = MLPActorCritic(env.observation_space, env.action_space, hidden_sizes=(32,))\n"
    "    logger.setup_pytorch_saver(ac)\n"
    "    start_time = time.time()\n"
    "    o, ep_ret, ep_len = env.reset(), 0, 0\n"
    "    for epoch in range(epochs):\n"
    "        for t in range(steps_per_epoch):\n"
    "            a, v, logp = ac.step(torch.as_tensor(o, dtype=torch.float32))\n"
    "            o, r, d, _ = env.step(a)\n"
    "            ep_ret, ep_len = ep_ret + r, ep_len + 1\n"
    "            logger.store(VVals=v)\n"
    "            if d:\n"
    "                logger.store(EpRet=ep_ret, EpLen=ep_len)\n"
    "                o, ep_ret, ep_len = env.reset(), 0, 0\n"
    "        if (epoch % save_freq == 0) or (epoch == epochs-1):\n"
    "            logger.save_state({'env': env}, None)\n"
    "        logger.log_tabular('Epoch', epoch)\n"
    "        logger.log_tabular('EpRet', with_min_and_max=True)\n"
    "        logger.log_tabular('EpLen', average_only=True)\n"
    "        logger.log_tabular('VVals', with_min_and_max=True)\n"
    "        logger.log_tabular('TotalEnvInteracts', (epoch+1)*steps_per_epoch)\n"
    "        logger.log_tabular('Time', time.time()-start_time)\n"
    "        logger.dump_tabular()\n"
    "\n"
    "train(logger_kwargs=dict(output_dir='data/handwritten', exp_name='handwritten'))\n"
)


def test_hand_written_loop_with_its_logger(tmp_data, capsys):
    """A loop written against Spinning Up's API. Besides the renames, three lines change, none of them the
    logger's: Gymnasium's reset returns (obs, info) and step five values, and the actor-critic of
    spinrl.nets (Spinning Up's ppo/core.py) returns tensors from step."""
    code = migrate(HAND_WRITTEN_LOOP).replace("spinrl.algos.pytorch.ppo.core", "spinrl.nets")
    code = code.replace(
        "o, ep_ret, ep_len = env.reset(), 0, 0", "(o, _), ep_ret, ep_len = env.reset(seed=0), 0, 0"
    )
    code = code.replace(
        "o, r, d, _ = env.step(a)",
        "o, r, term, trunc, _ = env.step(a.numpy())\n            d = term or trunc",
    )
    exec(compile(code, "train.py", "exec"), {"__name__": "__main__"})
    run = tmp_data / "data/handwritten"
    assert (run / "progress.txt").read_text().splitlines()[0].split("\t")[:3] == [
        "Epoch",
        "AverageEpRet",
        "StdEpRet",
    ]
    assert json.loads((run / "config.json").read_text())["env_name"] == "CartPole-v0"
    capsys.readouterr()
    assert spinrl(migrate("python -m spinup.run test_policy data/handwritten -n 3 -nr")) == 0
    assert capsys.readouterr().out.count("Episode ") == 3


# ----- docs/utils/mpi.rst and the other spinup.utils import paths ---------------------------------------------
def test_utils_import_paths():
    code = migrate(
        "from spinup.utils.mpi_tools import mpi_fork, proc_id, num_procs, mpi_avg, mpi_statistics_scalar\n"
        "from spinup.utils.mpi_pytorch import setup_pytorch_for_mpi, sync_params, mpi_avg_grads\n"
        "from spinup.utils.run_utils import ExperimentGrid, setup_logger_kwargs, call_experiment\n"
        "from spinup.utils.logx import Logger, EpochLogger\n"
        "from spinup.utils.plot import make_plots\n"
        "from spinup import EpochLogger as TopLevelEpochLogger\n"
        "import torch\n"
        "mpi_fork(1)\n"
        "setup_pytorch_for_mpi()\n"
        "net = torch.nn.Linear(2, 1)\n"
        "sync_params(net)\n"
        "net(torch.ones(1, 2)).sum().backward()\n"
        "mpi_avg_grads(net)\n"
        "result = (proc_id(), num_procs(), float(mpi_avg(3.0)), mpi_statistics_scalar([1.0, 3.0]))\n"
    )
    namespace: dict = {}
    exec(compile(code, "imports.py", "exec"), namespace)
    assert namespace["result"] == (0, 1, 3.0, (2.0, 1.0))
    assert namespace["TopLevelEpochLogger"] is namespace["EpochLogger"]
