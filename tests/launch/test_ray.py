"""The Ray backend: a 2-variant grid runs as Ray tasks on a local Ray instance.

Ray is an optional extra that ``make test`` installs, so the test fails rather than skips when Ray is
missing; set SPINRL_SKIP_RAY=1 to leave it out on a machine without the extra.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import TESTS_DIR

from spinrl.common.errors import UserError
from spinrl.launch.grid import ExperimentGrid

pytestmark = pytest.mark.skipif(os.environ.get("SPINRL_SKIP_RAY") == "1", reason="SPINRL_SKIP_RAY=1")


@pytest.fixture(scope="module")
def local_ray():
    import ray

    with pytest.MonkeyPatch.context() as mp:
        # Ray's workers inherit this environment; the variants import fake_algos:fake_algo from tests/.
        path = os.environ.get("PYTHONPATH")
        mp.setenv("PYTHONPATH", TESTS_DIR + (os.pathsep + path if path else ""))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            yield ray
        finally:
            ray.shutdown()


def test_two_variant_grid_on_local_ray(tmp_path, local_ray, capsys):
    from fake_algos import fake_algo

    eg = ExperimentGrid("ray")
    eg.add("seed", [0, 1])
    eg.add("epochs", 2)
    dirs = [Path(d) for d in eg.run(fake_algo, data_dir=str(tmp_path), backend="ray")]
    assert [d.name for d in dirs] == ["ray_s0", "ray_s1"]
    for d in dirs:
        assert json.loads((d / "status.json").read_text())["status"] == "finished"
        assert len((d / "progress.txt").read_text().splitlines()) == 3  # header + 2 epochs
    out = capsys.readouterr().out
    assert "on Ray (2 CPUs)" in out and out.count("done ") == 2
    assert local_ray.is_initialized()  # a Ray instance the caller started is left running for them


def test_failing_ray_task_is_reported_and_the_other_finishes(tmp_path, local_ray, capsys):
    from fake_algos import fake_algo

    eg = ExperimentGrid("rayfail")
    eg.add("fail", [True, False])
    eg.add("epochs", 1)
    with pytest.raises(UserError, match="1 of 2 variant"):
        eg.run(fake_algo, data_dir=str(tmp_path), backend="ray", parallel=2)
    bad, good = tmp_path / "rayfail_fai" / "rayfail_fai_s0", tmp_path / "rayfail" / "rayfail_s0"
    assert json.loads((good / "status.json").read_text())["status"] == "finished"
    assert "fake_algo was asked to fail" in (bad / "output.log").read_text()
    assert str(bad / "output.log") in capsys.readouterr().out
