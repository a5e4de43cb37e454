"""Two processes of 2 CPU devices (`jax.distributed` on 127.0.0.1) against one process
of 4, the tiny CMHN config for 30 steps: training lands where one process lands,
evaluation of one checkpoint writes the same files, and a run stopped by SIGTERM,
then killed (-9) in one process, resumes exactly; a bad distributed setting is one
line. (The Predictor's search over a collection split across processes is
tests/test_predictor.py's.)"""

import json
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.cli import Processes, command, environment, write_config
from tests.conftest import REPO

pytestmark = pytest.mark.xdist_group("multiprocess")
# Each all-reduce between processes costs milliseconds here (gloo over loopback TCP,
# one call per gradient leaf), more on loaded cores: 30 steps keep a run to about a
# minute; docs/scaling.md has the same comparison over 200 steps.
STEPS = ("--config.train.num_steps=30", "--config.train.eval_every=15",
         "--config.train.checkpoint_every=5")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, tiny_data_dir, tiny_release):
  return write_config(tmp_path_factory.mktemp("config"), "cmhn", tiny_data_dir, tiny_release)


def train_one(config_file, workdir, *extra):
  out = subprocess.run(command(config_file, workdir, *STEPS, *extra), cwd=REPO,
                       env=environment(4), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return out


@pytest.fixture(scope="module")
def runs(config_file, tmp_path_factory):
  """The same training on 1 process x 4 devices and on 2 processes x 2 devices."""
  one, two = tmp_path_factory.mktemp("one_by_four"), tmp_path_factory.mktemp("two_by_two")
  train_one(config_file, one)
  Processes(command(config_file, two, *STEPS), two / "logs").check()
  return one, two


def predictions(workdir, split="test"):
  return [json.loads(line) for line in
          (workdir / "eval" / f"{split}_predictions.jsonl").read_text().splitlines()]


def test_two_processes_train_as_one_process_of_four_devices(runs):
  one, two = runs
  # Both see the same global batches on the same 4-device program; only the order in
  # which the gradient's all-reduce adds the devices' parts (in one process, or over
  # gloo between two) may differ: float32 rounding, ~1e-7 relative a step, that the
  # Adam steps carry into the weights. Allowed: 1e-5 in a moment's score or time
  # (seen: 2.4e-7 after 200 steps, docs/scaling.md); the ranks and so R@n exactly.
  a, b = predictions(one), predictions(two)
  assert [(r["video"], r["query_index"]) for r in a] == [(r["video"], r["query_index"])
                                                         for r in b]
  for x, y in zip(a, b):
    np.testing.assert_allclose(x["pred"], y["pred"], rtol=0, atol=1e-5)
  metrics = [json.loads((w / "eval" / "test_metrics.json").read_text()) for w in runs]
  assert {k: v for k, v in metrics[0].items() if k != "mIoU"} == {
      k: v for k, v in metrics[1].items() if k != "mIoU"}
  assert metrics[0]["mIoU"] == pytest.approx(metrics[1]["mIoU"], abs=1e-6)
  assert metrics[0]["num_queries"] == 18
  # Process 0 alone wrote the run's files; the lock is gone.
  assert sorted(p.name for p in (two / "eval").iterdir()) == [
      "test_metrics.json", "test_predictions.jsonl", "test_submission.jsonl"]
  assert not (two / "lock").exists()


def test_evaluation_is_the_same_on_one_process_and_on_two(runs, config_file, tmp_path):
  one, _ = runs  # its files: the best checkpoint on the test split, on 1 x 4
  copy = tmp_path / "copy"
  shutil.copytree(one, copy, ignore=shutil.ignore_patterns("eval"))
  Processes(command(config_file, copy, *STEPS, "--mode=eval"), tmp_path / "logs").check()
  for name in ("test_metrics.json", "test_predictions.jsonl", "test_submission.jsonl"):
    assert (copy / "eval" / name).read_bytes() == (one / "eval" / name).read_bytes(), name


def wait_for(path, processes, timeout=300):
  deadline = time.time() + timeout
  while not path.exists():
    assert all(p.poll() is None for p in processes.procs), "a process ended first"
    assert time.time() < deadline, f"no {path} after {timeout} s"
    time.sleep(0.01)


def steps_saved(workdir):
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def test_sigterm_then_kill_of_one_process_then_restart_resume_exactly(runs, config_file,
                                                                      tmp_path):
  _, uninterrupted = runs
  workdir = tmp_path / "run"
  train = command(config_file, workdir, *STEPS)
  # SIGTERM to process 1: both save at the step JAX's preemption sync point names, and
  # stop with status 143.
  first = Processes(train, tmp_path / "first")
  wait_for(workdir / "checkpoints" / "5", first)
  first.procs[1].send_signal(signal.SIGTERM)
  assert first.wait(timeout=300) == [143, 143], first.output(0)[-3000:]
  stopped = steps_saved(workdir)[-1]
  assert 5 < stopped < 30
  for i in (0, 1):
    assert f"stopped by SIGTERM at step {stopped} of 30" in first.output(i)
  # Restart both; kill -9 process 1 at the next checkpoint, then process 0 (which
  # waits on process 1's collectives).
  second = Processes(train, tmp_path / "second")
  wait_for(workdir / "checkpoints" / str(5 * (stopped // 5 + 1)), second)
  second.procs[1].send_signal(signal.SIGKILL)
  second.procs[1].wait()
  second.kill()
  assert f"resuming from step {stopped} of 30" in second.output(0)
  assert not (workdir / "eval" / "test_metrics.json").exists()
  # Restart both again: the run ends as the uninterrupted one did, to the byte.
  third = Processes(train, tmp_path / "third")
  third.check()
  assert "taking over the stale lock" in third.output(0)
  for name in ("test_metrics.json", "test_predictions.jsonl"):
    assert ((workdir / "eval" / name).read_bytes()
            == (uninterrupted / "eval" / name).read_bytes()), name


def test_a_bad_distributed_setting_is_one_line(config_file, tmp_path):
  out = subprocess.run(command(config_file, tmp_path, "--mode=eval",
                               "--coordinator_address=127.0.0.1:1"),
                       cwd=REPO, env=environment(), capture_output=True, text=True,
                       timeout=120)
  assert out.returncode != 0 and "Traceback" not in out.stderr
  assert "Number of processes must be defined" in out.stderr
  assert "--num_processes" in out.stderr.strip().splitlines()[-1]
