"""``compile=True`` (spinrl.training.compiled_update): the compiled update is the same algorithm as the eager one.

Compiling costs tens of seconds even for tiny networks on a 2-core machine, so the module compiles as
little as the checks need: one compiled run each of SAC and TD3, compared with an eager run of the same
seed, then a resumed run and a command-line run of SAC in the same process, which reuse its compiled code.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from spinrl import sac, td3
from spinrl.cli import main
from spinrl.common.errors import UserError, run_main_guarded
from spinrl.record.checkpoint import load_checkpoint
from spinrl.record.logger import read_progress
from spinrl.training.compiled_update import compile_options, compile_update
from spinrl.training.offpolicy import UpdateStats

# Tiny networks and batches, two rounds of 50 updates: enough for TD3's update with and without the
# policy step, SAC's learned temperature, and differences between the two runs to show.
SMALL = dict(
    steps_per_epoch=150, epochs=1, start_steps=100, update_after=50, update_every=50, batch_size=8,
    num_test_episodes=1, max_ep_len=50, ac_kwargs=dict(hidden_sizes=(16, 16)), device="cpu",
)  # fmt: skip
# SAC (with its learned temperature) and TD3 (with and without the delayed policy step) cover every
# kind of step; DDPG's and DQN's updates are subsets of theirs, and another ~20 s of compiling each.
ALGOS = {"sac": (sac, "Pendulum-v1", dict(alpha="auto")), "td3": (td3, "Pendulum-v1", {})}


def _train(algo: str, out, compile: bool, **extra):
    fn, env, kwargs = ALGOS[algo]
    return fn(
        env, compile=compile, logger_kwargs=dict(output_dir=str(out), quiet=True), **SMALL, **kwargs, **extra
    )


@pytest.fixture(scope="module")
def compiled_runs(tmp_path_factory):
    """One compiled run per algorithm (the expensive part), shared by the tests below."""
    runs = {}
    for algo in ALGOS:
        out = tmp_path_factory.mktemp(f"compiled-{algo}") / "run"
        runs[algo] = (out, _train(algo, out, compile=True))
    return runs


@pytest.mark.parametrize("algo", list(ALGOS))
def test_compiled_update_matches_eager(compiled_runs, tmp_path, algo):
    out, compiled_ac = compiled_runs[algo]
    eager_ac = _train(algo, tmp_path / "eager", compile=False)
    # Same seed, same random draws (fallback_random): after 100 updates the weights differ only by
    # floating-point rounding (fused kernels add in another order), far below one update's change.
    compiled_state, eager_state = compiled_ac.state_dict(), eager_ac.state_dict()
    assert compiled_state.keys() == eager_state.keys()
    for name in eager_state:
        torch.testing.assert_close(compiled_state[name], eager_state[name], rtol=1e-4, atol=1e-5, msg=name)
    compiled_rows, eager_rows = (
        read_progress(out / "progress.txt"),
        read_progress(tmp_path / "eager/progress.txt"),
    )
    for column in ("LossQ", "LossPi", "AverageQ1Vals", "AverageQVals", "Alpha", "AverageTestEpRet"):
        if column in eager_rows:
            np.testing.assert_allclose(compiled_rows[column], eager_rows[column], rtol=1e-4, err_msg=column)
    assert any(torch.any(p != 0) for p in compiled_ac.parameters())


def test_compiled_run_checkpoint_is_plain_and_resumes(compiled_runs, tmp_path, capsys):
    out, _ = compiled_runs["sac"]
    # The update function was compiled, not the modules: no "_orig_mod." prefixes, and the checkpoint
    # loads with weights_only=True (load_checkpoint's way).
    saved = load_checkpoint(out)
    assert not any("_orig_mod" in k for k in saved["ac"]), list(saved["ac"])
    twin = tmp_path / "twin"
    shutil.copytree(out, twin)
    fn, env, kwargs = ALGOS["sac"]
    more = dict(SMALL, epochs=2)
    resumed = fn(env, compile=True, resume=True, logger_kwargs=dict(output_dir=str(out)), **more, **kwargs)
    assert "compile: the first update took" in capsys.readouterr().out
    progress = read_progress(out / "progress.txt")
    assert list(progress["Epoch"]) == [0, 1]
    assert np.all(np.isfinite(progress["LossQ"])) and np.all(np.isfinite(progress["AverageTestEpRet"]))
    # The same checkpoint resumed without compiling continues the same way.
    eager = fn(
        env,
        compile=False,
        resume=True,
        logger_kwargs=dict(output_dir=str(twin), quiet=True),
        **more,
        **kwargs,
    )
    for (name, a), b in zip(resumed.state_dict().items(), eager.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_cli_compile_flag_runs_and_is_recorded(compiled_runs, tmp_data, capsys):
    # In this process, after the fixture's SAC run: the compiled code is found again, not rebuilt.
    args = [
        "sac",
        "--env",
        "Pendulum-v1",
        "--compile",
        "--exp_name",
        "c",
        "--hid",
        "[16,16]",
        "--alpha",
        "auto",
    ]
    for k, v in SMALL.items():
        if k != "ac_kwargs":
            args += [f"--{k}", str(v)]
    assert main(args) == 0
    assert "compile: the first update took" in capsys.readouterr().out
    run_dir = tmp_data / "data/c/c_s0"
    assert json.loads((run_dir / "config.json").read_text())["compile"] is True
    assert np.all(np.isfinite(read_progress(run_dir / "progress.txt")["AverageTestEpRet"]))


def test_cli_refuses_a_compile_value_before_making_the_run_dir(tmp_data, capsys):
    assert (
        run_main_guarded(main, ["td3", "--env", "Pendulum-v1", "--compile", "yes", "--exp_name", "bad"]) == 2
    )
    assert "compile='yes' is not valid: it must be True or False" in capsys.readouterr().err
    assert not (tmp_data / "data/bad").exists()


def test_compile_must_be_a_bool():
    with pytest.raises(UserError, match="compile=1 is not valid: it must be True or False"):
        compile_update(lambda data: None, 1, torch.device("cpu"))
    update = lambda data: None  # noqa: E731
    assert compile_update(update, False, torch.device("cpu")) is update


def test_cuda_graphs_only_on_cuda():
    assert not compile_options(torch.device("cpu")).get("triton.cudagraphs")
    assert compile_options(torch.device("cuda")).get("triton.cudagraphs") is True
    assert compile_options(torch.device("cpu"))["fallback_random"] is True
    # torch accepts the CUDA settings (no GPU here: it runs the CPU tensors without CUDA graphs).
    double_relu = torch.compile(lambda x: torch.relu(x) * 2, options=compile_options(torch.device("cuda")))
    x = torch.randn(4)
    assert torch.equal(double_relu(x), torch.relu(x) * 2)


def test_update_stats_keep_copies_not_views():
    # A replayed CUDA graph overwrites its outputs in place; what UpdateStats keeps must not change.
    stats, loss = UpdateStats(), torch.tensor(1.0)
    stats.add(LossQ=loss)
    loss.fill_(2.0)
    assert stats.values["LossQ"][0].item() == 1.0


def test_a_first_call_that_compiled_nothing_does_not_claim_it_did(monkeypatch):
    """Issue 18: TD3's second variant (its graphs already compiled) printed "took 0.0 s, most of it compiling"."""
    import spinrl.training.compiled_update as cu

    monkeypatch.setattr(torch, "compile", lambda fn, **_: fn)  # compiling that costs nothing

    class Messages:
        lines: list[str] = []

        def log_message(self, msg):
            self.lines.append(msg)

    logger = Messages()
    update = cu.compile_update(lambda data, update_policy: None, True, torch.device("cpu"), logger)
    for flag in (True, False, True):
        update({}, update_policy=flag)
    assert len(logger.lines) == 2  # one per variant
    assert all("most of it compiling" not in line and "compiled already" in line for line in logger.lines)


def test_dynamo_s_profiler_note_is_not_printed_on_every_compiled_run(monkeypatch, caplog):
    """Issue 18: every --compile run printed "Profiler record function ... will be ignored"."""
    import logging

    import spinrl.training.compiled_update as cu

    monkeypatch.setattr(torch, "compile", lambda fn, **_: fn)
    cu.compile_update(lambda data: None, True, torch.device("cpu"))
    dynamo = logging.getLogger("torch._dynamo.variables.ctx_manager")
    with caplog.at_level(logging.WARNING):
        dynamo.warning("Profiler record function %s will be ignored", "record_function")
        dynamo.warning("some other warning")
    assert "Profiler record function" not in caplog.text and "some other warning" in caplog.text
