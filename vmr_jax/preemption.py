"""SIGTERM stops training at a step every process agrees on, after saving there.

A preemptible TPU VM, a Colab disconnect, Slurm's `--signal=TERM@SECONDS` or
`kill PID` send SIGTERM. `Watcher.reached(step)`, asked after every train step, is
True at the first step at which the run should save and stop:
- one process: the step after SIGTERM arrived (a Python handler sets a flag; the
  step running when it arrived completes);
- several (`jax.distributed`): the step JAX's preemption sync point names, the same
  on every process (`multihost_utils.reached_preemption_sync_point`: JAX's runtime
  catches SIGTERM on the process that gets it and tells the others).
The trainer then saves the latest checkpoint and raises `Preempted`; the command
line prints where the run stopped and exits with status 143 (128 + SIGTERM: not
finished), and the same command resumes from that checkpoint.
"""

from __future__ import annotations

import signal
import threading

import jax

EXIT_STATUS = 143  # 128 + SIGTERM: the run did not finish


class Preempted(Exception):
  """Training stopped on SIGTERM after saving `checkpoint` at `step`."""

  def __init__(self, step: int, num_steps: int, checkpoint: str):
    super().__init__(f"stopped by SIGTERM at step {step} of {num_steps}: saved "
                     f"{checkpoint}; the same command resumes from it")
    self.step, self.checkpoint = step, checkpoint


class Watcher:
  """Watches for SIGTERM from construction to `close` (a context manager)."""

  def __init__(self):
    self.multiprocess = jax.process_count() > 1
    self.received = False
    self._previous = None
    if not self.multiprocess and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    self.received = True

  def reached(self, step: int) -> bool:
    if self.multiprocess:
      from jax.experimental import multihost_utils
      return multihost_utils.reached_preemption_sync_point(step)
    return self.received

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def __enter__(self) -> "Watcher":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
