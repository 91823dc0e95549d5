"""``torchrun -m indiflow train``: two CPU ranks (gloo) through the console script."""

import os
import re
import subprocess
import sys

from cli_helpers import write_tiny_config

from indiflow.training import list_checkpoints


def test_torchrun_runs_two_ranks(tmp_path):
    config = write_tiny_config(tmp_path)
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    command += ["--standalone", "-m", "indiflow", "train", str(config), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(re.findall(r"trained to step 2", result.stdout)) == 1  # rank 0 only
    assert [p.name for p in list_checkpoints(out)] == ["step_00000001.pt", "step_00000002.pt"]
