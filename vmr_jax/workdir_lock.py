"""One training run per workdir: `WORKDIR/lock` names the run that holds it.

`hold(workdir)` (a context manager, process 0 of a run) creates the lock file
exclusively with the holder's pid, host, start time and command line, and removes it
when the run ends, however it ends short of SIGKILL. A second run into the same
workdir stops at once (`WorkdirInUseError`, naming the other run's pid and host). A
lock left by a killed run is stale: on the same host, when its pid is gone (or now
belongs to a process started after the lock), the next run takes it over with a
warning; a lock from another host cannot be checked from here, and the error says to
delete the file if that run is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time

LOCK_FILE = "lock"


class WorkdirInUseError(RuntimeError):
  pass


@contextlib.contextmanager
def hold(workdir: str):
  path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
          "command": " ".join(sys.argv)}
  while not _create(path, mine):
    holder = _read(path, wait_s=1.0)
    if holder is None:  # gone meanwhile, or not a lock this module wrote: replace it
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
      continue
    if not _stale(holder):
      raise WorkdirInUseError(
          f"{workdir} is in use by pid {holder['pid']} on {holder['host']} (since "
          f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder['started']))}: "
          f"{holder.get('command', '?')}); wait for it to end, use another --workdir, "
          f"or delete {path} if that run is gone")
    print(f"warning: taking over the stale lock {path} of pid {holder['pid']} on "
          f"{holder['host']} (no such process)", file=sys.stderr, flush=True)
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)
  try:
    yield path
  finally:
    if (_read(path) or {}).get("pid") == mine["pid"]:
      os.remove(path)


def _create(path: str, holder: dict) -> bool:
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    json.dump(holder, f)
  return True


def _read(path: str, wait_s: float = 0.0) -> dict | None:
  """The lock's holder; None if there is no lock or, after `wait_s` (a lock being
  written), none readable."""
  deadline = time.monotonic() + wait_s
  while True:
    try:
      with open(path) as f:
        holder = json.load(f)
      if isinstance(holder, dict) and {"pid", "host", "started"} <= set(holder):
        return holder
    except FileNotFoundError:
      return None
    except (OSError, json.JSONDecodeError):
      pass
    if time.monotonic() > deadline:
      return None
    time.sleep(0.05)


def _stale(holder: dict) -> bool:
  """Whether the holder is a process of this host that no longer runs."""
  if holder["host"] != socket.gethostname():
    return False
  pid = int(holder["pid"])
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except PermissionError:
    return False
  started = _process_start(pid)  # a pid reused by a process started after the lock
  return started is not None and started > float(holder["started"]) + 1.0


def _process_start(pid: int) -> float | None:
  """The start time (epoch seconds) of process `pid`, from /proc (None elsewhere)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as f:
      boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
  except (OSError, ValueError, IndexError, StopIteration):
    return None
  return boot + ticks / os.sysconf("SC_CLK_TCK")
