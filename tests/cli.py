"""The command line in subprocesses: a tiny config's file (`write_config`), one process
(`command`, `environment`), or several of one command on 127.0.0.1 (`Processes`: `jax.distributed` over a free
port, each process with its own CPU devices, all killed if any hangs)."""

import os
import socket
import subprocess
import sys
import time

from tests.conftest import FAST_COMPILE, REPO

CONFIG = """
import pathlib, sys
sys.path.insert(0, {repo!r})
from tests.models import tiny_config

def get_config():
  return tiny_config({variant!r}, pathlib.Path({data!r}), pathlib.Path({release!r}))
"""


def write_config(directory, variant, data_dir, release):
  """`directory/tiny_<variant>.py`: the config file of `tests.models.tiny_config(variant,
  ...)` ("MODEL" or "MODEL/READING")."""
  path = directory / f"tiny_{variant.replace('/', '_')}.py"
  path.write_text(CONFIG.format(repo=str(REPO), variant=variant, data=str(data_dir),
                                release=str(release)))
  return path


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def command(config_file, workdir, *extra) -> list[str]:
  return [sys.executable, "-m", "vmr_jax.main", f"--config={config_file}",
          f"--workdir={workdir}", *extra]


def environment(devices: int = 1) -> dict:
  """CPU only, `devices` CPU devices, the tests' fast compilation."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"{FAST_COMPILE} --xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  return env


class Processes:
  """`count` processes of `command + [--coordinator_address, --num_processes,
  --process_id]`, `devices` CPU devices each; output in `logs/<i>.out`."""

  def __init__(self, command, logs, count: int = 2, devices: int = 2,
               connect_timeout: int = 60):
    port = free_port()
    os.makedirs(logs, exist_ok=True)
    self.logs = [os.path.join(logs, f"{i}.out") for i in range(count)]
    self.procs = []
    for i in range(count):
      with open(self.logs[i], "w") as out:
        self.procs.append(subprocess.Popen(
            [*command, f"--coordinator_address=127.0.0.1:{port}",
             f"--num_processes={count}", f"--process_id={i}",
             f"--connect_timeout={connect_timeout}"],
            cwd=REPO, env=environment(devices), stdout=out, stderr=subprocess.STDOUT))

  def output(self, i: int) -> str:
    with open(self.logs[i]) as f:
      return f.read()

  def wait(self, timeout: float = 600, grace: float = 30) -> list[int]:
    """Every return code; a process still running `grace` s after another failed, or
    at `timeout`, is killed (its code then -9)."""
    deadline, failed_at = time.time() + timeout, None
    while any(p.poll() is None for p in self.procs):
      now = time.time()
      if failed_at is None and any(p.poll() not in (None, 0) for p in self.procs):
        failed_at = now
      if now > deadline or (failed_at is not None and now > failed_at + grace):
        self.kill()
        break
      time.sleep(0.1)
    return [p.wait() for p in self.procs]

  def kill(self) -> None:
    for p in self.procs:
      if p.poll() is None:
        p.kill()
    for p in self.procs:
      p.wait()

  def check(self, timeout: float = 600) -> None:
    codes = self.wait(timeout)
    assert codes == [0] * len(codes), "\n".join(
        f"--- process {i} (exit {c}):\n{self.output(i)[-3000:]}"
        for i, c in enumerate(codes))
