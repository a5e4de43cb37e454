"""The workdir lock: held and released, refused while its holder runs, taken over
from a holder that is gone (a killed run), refused from another host."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from vmr_jax import workdir_lock


def write_lock(directory, **holder):
  holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "command": "another run", **holder}
  (directory / workdir_lock.LOCK_FILE).write_text(json.dumps(holder))


def test_held_then_released(tmp_path):
  with workdir_lock.hold(str(tmp_path)) as path:
    holder = json.loads(open(path).read())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(workdir_lock.WorkdirInUseError, match=f"pid {os.getpid()} on"):
      with workdir_lock.hold(str(tmp_path)):
        pass
  assert not (tmp_path / workdir_lock.LOCK_FILE).exists()


def test_released_when_the_run_fails(tmp_path):
  with pytest.raises(ValueError):
    with workdir_lock.hold(str(tmp_path)):
      raise ValueError("the run failed")
  assert not (tmp_path / workdir_lock.LOCK_FILE).exists()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, capsys):
  gone = subprocess.Popen([sys.executable, "-c", "pass"])
  gone.wait()
  write_lock(tmp_path, pid=gone.pid)
  with workdir_lock.hold(str(tmp_path)) as path:
    assert json.loads(open(path).read())["pid"] == os.getpid()
  assert f"taking over the stale lock {path} of pid {gone.pid}" in capsys.readouterr().err


def test_a_reused_pid_is_stale(tmp_path):
  write_lock(tmp_path, started=time.time() - 3600 * 24 * 365 * 30)  # 30 years ago: not us
  with workdir_lock.hold(str(tmp_path)):
    pass


def test_another_hosts_lock_is_not_guessed_at(tmp_path):
  write_lock(tmp_path, pid=1, host="elsewhere.example")
  with pytest.raises(workdir_lock.WorkdirInUseError,
                     match="pid 1 on elsewhere.example .*delete .*lock if that run is gone"):
    with workdir_lock.hold(str(tmp_path)):
      pass
