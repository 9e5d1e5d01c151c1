import json

import numpy as np
import pytest

from spinrl.record.logger import EpochLogger, RunExistsError, convert_json, read_progress, setup_logger_kwargs


def _epoch(logger, epoch, rets):
    for r in rets:
        logger.store(EpRet=r)
    logger.log_tabular("Epoch", epoch)
    logger.log_tabular("EpRet", with_min_and_max=True)
    logger.log_tabular("TotalEnvInteracts", 100 * (epoch + 1))
    return logger.dump_tabular()


def test_progress_txt_is_tab_separated_with_header(tmp_path):
    logger = EpochLogger(output_dir=str(tmp_path / "run"), quiet=True, tensorboard=False)
    row = _epoch(logger, 0, [1.0, 3.0])
    _epoch(logger, 1, [5.0])
    lines = (tmp_path / "run" / "progress.txt").read_text().splitlines()
    assert lines[0].split("\t") == [
        "Epoch",
        "AverageEpRet",
        "StdEpRet",
        "MaxEpRet",
        "MinEpRet",
        "TotalEnvInteracts",
    ]
    assert len(lines) == 3
    assert row["AverageEpRet"] == pytest.approx(2.0) and row["StdEpRet"] == pytest.approx(1.0)
    cols = read_progress(tmp_path / "run" / "progress.txt")
    np.testing.assert_allclose(cols["MaxEpRet"], [3.0, 5.0])


def test_epoch_table_is_printed(tmp_path, capsys):
    logger = EpochLogger(output_dir=str(tmp_path / "run"), tensorboard=False)
    _epoch(logger, 0, [2.0])
    out = capsys.readouterr().out
    assert "AverageEpRet" in out and "|" in out


def test_tensorboard_events_written(tmp_path):
    logger = EpochLogger(output_dir=str(tmp_path / "run"), quiet=True)
    _epoch(logger, 0, [2.0])
    logger.close()
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))


def test_existing_run_is_never_overwritten(tmp_path):
    out = str(tmp_path / "run")
    logger = EpochLogger(output_dir=out, quiet=True, tensorboard=False)
    _epoch(logger, 0, [2.0])
    before = (tmp_path / "run" / "progress.txt").read_text()
    with pytest.raises(RunExistsError, match="--resume"):
        EpochLogger(output_dir=out, quiet=True, tensorboard=False)
    assert (tmp_path / "run" / "progress.txt").read_text() == before


def test_truncate_to_epochs_drops_rows_after_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    logger = EpochLogger(output_dir=out, quiet=True, tensorboard=False)
    for e in range(4):
        _epoch(logger, e, [float(e)])
    resumed = EpochLogger(output_dir=out, quiet=True, tensorboard=False, resume=True)
    resumed.truncate_to_epochs(2)
    _epoch(resumed, 2, [9.0])
    cols = read_progress(tmp_path / "run" / "progress.txt")
    assert cols["Epoch"].tolist() == [0, 1, 2]
    assert cols["AverageEpRet"].tolist() == [0.0, 1.0, 9.0]


def test_config_json_is_json_safe(tmp_path):
    import torch

    logger = EpochLogger(output_dir=str(tmp_path / "run"), quiet=True, tensorboard=False)
    logger.save_config(dict(activation=torch.nn.Tanh, env_fn=lambda: None, sizes=(64, 64), lr=1e-3))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["activation"] == "torch.nn.modules.activation.Tanh"
    assert config["sizes"] == [64, 64] and config["lr"] == 1e-3


def test_setup_logger_kwargs_layout(tmp_path):
    kw = setup_logger_kwargs("cp", 10, str(tmp_path))
    assert kw["output_dir"] == str(tmp_path / "cp" / "cp_s10")
    kw = setup_logger_kwargs("cp", 0, str(tmp_path), datestamp=True)
    assert kw["output_dir"].endswith("-cp_s0") and "_cp" in kw["output_dir"]


def test_convert_json_nested():
    assert convert_json({"a": [1, (2, 3)], "b": np.float32(0.5)}) == {"a": [1, [2, 3]], "b": 0.5}


def test_resume_before_first_checkpoint_writes_one_header(tmp_path):
    out = str(tmp_path / "run")
    logger = EpochLogger(output_dir=out, quiet=True, tensorboard=False)
    for e in range(3):
        _epoch(logger, e, [float(e)])
    resumed = EpochLogger(output_dir=out, quiet=True, tensorboard=False, resume=True)
    resumed.truncate_to_epochs(0)  # killed before the first checkpoint: every row is redone
    _epoch(resumed, 0, [7.0])
    lines = (tmp_path / "run" / "progress.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[0].count("Epoch") == 1
    assert read_progress(tmp_path / "run" / "progress.txt")["AverageEpRet"].tolist() == [7.0]


def test_spinning_up_imports_from_the_logger_still_work():
    # The logger's parts live in modules of their own; the logger module keeps Spinning Up's import paths.
    from spinrl.record import config, folder, progress
    from spinrl.record import logger as logx

    assert logx.setup_logger_kwargs is folder.setup_logger_kwargs
    assert logx.read_progress is progress.read_progress
    assert logx.RunExistsError is folder.RunExistsError
    assert logx.convert_json is config.convert_json
    assert not hasattr(logx, "DEFAULT_DATA_DIR")  # the data dir is looked up at call time only


def test_status_json_is_written_through_rundir(tmp_path):
    from spinrl.record.status import read_status, run_state

    logger = EpochLogger(output_dir=str(tmp_path / "run"), quiet=True, tensorboard=False)
    logger.set_status("running", 1, 4)
    status = read_status(tmp_path / "run")
    assert (status["status"], status["epoch"], status["epochs"]) == ("running", 1, 4)
    assert run_state(status) == "running"
    logger.set_status("failed", 2, 4)
    assert run_state(read_status(tmp_path / "run")) == "failed"


def test_truncate_keeps_rows_by_their_epoch_value_not_their_position(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    header = "Epoch\tAverageEpRet\tStdEpRet\tMaxEpRet\tMinEpRet\tTotalEnvInteracts\n"

    def row(epoch, ret):
        return f"{epoch}\t{ret}\t0\t{ret}\t{ret}\t{100 * (epoch + 1)}\n"

    rows = [
        row(0, 1.0),
        row(1, 2.0),
        row(1, 2.5),  # epoch 1 twice (two writers, before runs were locked)
        header,  # and a second header
        row(3, 4.0),  # epoch 2 missing
        row(4, 5.0),
        row(5, 6.0)[:-3],  # half written by a kill
    ]
    (run / "progress.txt").write_text(header + "".join(rows))
    logger = EpochLogger(output_dir=str(run), resume=True, quiet=True, tensorboard=False)
    logger.truncate_to_epochs(4)  # the checkpoint holds 4 epochs: 0, 1, 2, 3
    cols = read_progress(run / "progress.txt")
    assert cols["Epoch"].tolist() == [0, 1, 3] and cols["AverageEpRet"].tolist() == [1.0, 2.0, 4.0]
    _epoch(logger, 4, [9.0])  # the next epoch is appended under the one header
    text = (run / "progress.txt").read_text()
    assert text.count("Epoch") == 1 and read_progress(run / "progress.txt")["Epoch"].tolist() == [0, 1, 3, 4]
    logger.close()


def test_no_live_bar_or_colours_unless_stdout_is_a_terminal_the_launcher_vouches_for(monkeypatch):
    import io

    from spinrl.common.mpi import PLAIN_OUTPUT_ENV, mpiexec_command
    from spinrl.record.logger import live_terminal

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv(PLAIN_OUTPUT_ENV, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr("sys.stdout", Tty())
    assert live_terminal()
    # Under mpiexec every rank sees a pseudo-terminal; the launcher says whether its own output is one.
    monkeypatch.setenv(PLAIN_OUTPUT_ENV, "1")
    assert not live_terminal()
    monkeypatch.delenv(PLAIN_OUTPUT_ENV)
    assert mpiexec_command(2)[1][PLAIN_OUTPUT_ENV] == "0"
    monkeypatch.setattr("sys.stdout", io.StringIO())  # the launcher writes to a pipe or a file
    assert not live_terminal()
    assert mpiexec_command(2)[1][PLAIN_OUTPUT_ENV] == "1"


# ----- Spinning Up's Logger interface ---------------------------------------------------------------------
def test_logger_is_spinning_ups_plain_table_and_epoch_logger_adds_statistics(tmp_path, capsys):
    from spinrl.record.logger import Logger

    logger = Logger(output_dir=str(tmp_path / "run"), tensorboard=False)
    logger.log_tabular("Epoch", 0)
    logger.log_tabular("Loss", 0.5)
    logger.dump_tabular()
    logger.log("all done", color="cyan")  # plain text: the output is not a terminal here
    out = capsys.readouterr().out
    assert "Loss" in out and out.rstrip().endswith("all done") and "\x1b[" not in out
    assert read_progress(tmp_path / "run" / "progress.txt")["Loss"].tolist() == [0.5]
    assert issubclass(EpochLogger, Logger) and not hasattr(logger, "store")
    with pytest.raises(Exception, match="color 'pink' is not valid"):
        logger.log("x", color="pink")


def test_colorize_wraps_in_ansi_codes():
    from spinrl.record.logger import colorize

    assert colorize("hi", "red", bold=True) == "\x1b[31;1mhi\x1b[0m"
    assert colorize("hi", "green", highlight=True) == "\x1b[42mhi\x1b[0m"


def test_save_state_writes_safe_checkpoints_with_what_rebuilds_the_network(tmp_path, capsys):
    import gymnasium as gym
    import torch

    from spinrl.nets.actor_critic import MLPActorCritic
    from spinrl.record.checkpoint import load_checkpoint

    env = gym.make("CartPole-v1")
    ac = MLPActorCritic(env.observation_space, env.action_space, hidden_sizes=(8, 4), activation=torch.nn.ELU)
    logger = EpochLogger(output_dir=str(tmp_path / "run"), quiet=True, tensorboard=False)
    logger.setup_pytorch_saver(ac)
    opt = torch.optim.Adam(ac.parameters())
    logger.save_state({"env": env, "opt": opt, "step": np.int64(3), "obs": np.ones(2), "fn": print}, None)
    logger.save_state({"env": env}, 5)
    assert "save_state left out fn" in capsys.readouterr().err
    state = load_checkpoint(tmp_path / "run")  # torch.load(weights_only=True) underneath
    assert state["module"]["class"] == "spinrl.nets.actor_critic.MLPActorCritic"
    assert state["module"]["kwargs"] == {"hidden_sizes": [8, 4], "activation": "torch.nn.ELU"}
    assert state["module"]["structure"] == repr(ac)
    assert state["env_spec"] == {"id": "CartPole-v1", "kwargs": {}, "max_episode_steps": 500}
    assert state["state"]["step"] == 3 and state["state"]["obs"].tolist() == [1.0, 1.0]
    assert set(state["state"]["opt"]) == {"state", "param_groups"}
    torch.testing.assert_close(state["ac"]["v.v_net.0.weight"], ac.v.v_net[0].weight)
    assert (tmp_path / "run" / "snapshots" / "5" / "checkpoint.json").exists()
    with pytest.raises(Exception, match="needs a torch.nn.Module"):
        logger.setup_pytorch_saver({"pi": ac.pi})


def test_save_config_records_the_env_an_env_function_makes(tmp_path):
    import gymnasium as gym

    made = []

    def env_fn():
        made.append(1)
        return gym.make("Pendulum-v1", g=9.0)

    logger = EpochLogger(output_dir=str(tmp_path / "a"), quiet=True, tensorboard=False)
    logger.save_config(dict(env_fn=env_fn, env_name=None, seed=0))
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["env_spec"] == {"id": "Pendulum-v1", "kwargs": {"g": 9.0}, "max_episode_steps": 200}
    assert made == [1]
    # A Gymnasium id says it already; an argument that is not a plain value cannot be recorded.
    logger = EpochLogger(output_dir=str(tmp_path / "b"), quiet=True, tensorboard=False)
    logger.save_config(dict(env_fn=env_fn, env_name="Pendulum-v1"))
    assert "env_spec" not in json.loads((tmp_path / "b" / "config.json").read_text()) and made == [1]
    logger = EpochLogger(output_dir=str(tmp_path / "c"), quiet=True, tensorboard=False)
    logger.save_config(dict(env=gym.make("Pendulum-v1", g=np.float32(9.0))))
    spec = json.loads((tmp_path / "c" / "config.json").read_text())["env_spec"]
    assert spec["unrecorded_kwargs"] == ["g"] and "kwargs" not in spec
