"""Orbax checkpoints: the latest for resuming, the best by a validation metric.

`WORKDIR/checkpoints/<step>` holds the train state and the input pipeline's position
(so a resumed run reads the same batches as an uninterrupted one); the newest
`keep` are kept. `WORKDIR/best/<step>` holds the train state with the highest
validation metric. Saves are atomic (Orbax writes to a temporary folder first and
renames it), so a crash while saving leaves the older checkpoints as they were.
With several processes every process saves and restores together (Orbax's
barriers); process 0 writes the files of replicated arrays and the JSON.

A checkpoint that does not restore (a truncated or deleted file, a disk's error) is
reported by path with the error's first line, and the next older one is tried:
`restore_latest` falls back through `checkpoints/`, `restore_best` from `best/` to
the newest readable of `checkpoints/`, each saying which it took. Training moves the
unreadable latest ones to `WORKDIR/unreadable/<step>` (kept for inspection, and out
of the way of the steps the resumed run saves again); evaluation and export leave
them. If none restores, the error
names every path tried (`CheckpointError`): usually a config that differs from the
run's.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Callable, Mapping

import orbax.checkpoint as ocp

from vmr_jax import distributed


class CheckpointError(RuntimeError):
  pass


class Checkpoints:
  def __init__(self, workdir: str, keep: int = 2, best_metric: str = ""):
    self.workdir = os.path.abspath(workdir)
    self.best_metric = best_metric
    self._latest = ocp.CheckpointManager(
        os.path.join(self.workdir, "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))
    self._best = ocp.CheckpointManager(
        os.path.join(self.workdir, "best"),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, enable_async_checkpointing=False,
            best_fn=lambda m: m[best_metric], best_mode="max"))

  def latest_step(self) -> int | None:
    return self._latest.latest_step()

  def latest_path(self, step: int) -> str:
    return os.path.join(self.workdir, "checkpoints", str(step))

  def save_latest(self, step: int, state: Any, data_state: Mapping[str, int]) -> None:
    self._latest.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(dict(data_state))),
        force=True)

  def restore_latest(self, abstract_state: Any, set_aside: bool = False
                     ) -> tuple[Any, dict[str, int], int]:
    """(state, input position, step) of the newest readable checkpoint; with
    `set_aside` (training, which saves those steps again) the newer unreadable ones
    move to WORKDIR/unreadable."""
    args = lambda: ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                      data=ocp.args.JsonRestore())
    restored, step, unreadable = _newest_readable(
        self._latest, args, self.latest_path, "checkpoint")
    if restored is None:
      if not unreadable:
        raise FileNotFoundError(f"no checkpoint in {os.path.dirname(self.latest_path(0))}")
      raise CheckpointError(_none_restored(unreadable, self.latest_path))
    if set_aside:
      self._set_aside(unreadable)
    return restored["state"], dict(restored["data"]), step

  def save_if_best(self, step: int, state: Any, metrics: Mapping[str, float]) -> bool:
    """Saves when `metrics[best_metric]` beats every earlier one; True if it did."""
    best = self._best.best_step()
    if best is not None:
      previous = self._best.metrics(best)  # type: ignore[attr-defined]
      if previous is not None and metrics[self.best_metric] <= previous[self.best_metric]:
        return False
    self._best.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)),
                    metrics={k: float(v) for k, v in metrics.items()}, force=True)
    return True

  def restore_best(self, abstract_state: Any) -> tuple[Any, int]:
    """(state, step) of the best checkpoint, or where it does not restore, of the
    newest readable latest one (saying so)."""
    if self._best.best_step() is None:
      raise FileNotFoundError("no best checkpoint: no evaluation has run yet")
    best_path = lambda step: os.path.join(self.workdir, "best", str(step))
    restored, step, unreadable = _newest_readable(
        self._best,
        lambda: ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)),
        best_path, "best checkpoint", steps=[self._best.best_step()])
    if restored is not None:
      return restored["state"], step
    state, _, step = self.restore_latest(abstract_state)
    distributed.warn(f"using the newest readable checkpoint instead of the best: "
                     f"{self.latest_path(step)}")
    return state, step

  def close(self) -> None:
    self._latest.close()
    self._best.close()

  def _set_aside(self, steps: list[tuple[int, str]]) -> None:
    """Moves unreadable latest checkpoints to WORKDIR/unreadable (process 0)."""
    if not steps:
      return
    if distributed.is_main():
      for step, _ in steps:
        target = os.path.join(self.workdir, "unreadable", str(step))
        if os.path.exists(target):
          target += f".{int(time.time())}"
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(self.latest_path(step), target)
        distributed.warn(f"moved the unreadable {self.latest_path(step)} to {target}")
    distributed.barrier("checkpoints set aside")
    self._latest.reload()


def _newest_readable(manager: ocp.CheckpointManager, args: Callable[[], Any],
                     path: Callable[[int], str], kind: str, steps=None):
  """(restored or None, its step, [(step, error) of the unreadable ones tried])."""
  unreadable = []
  for step in sorted(manager.all_steps() if steps is None else steps, reverse=True):
    try:
      restored = manager.restore(step, args=args())
    except Exception as e:  # noqa: BLE001 -- any failure to read is reported, not raised
      reason = _first_line(e)
      unreadable.append((step, reason))
      distributed.warn(f"{kind} {path(step)} does not restore ({reason})")
      continue
    if unreadable:
      distributed.warn(f"falling back to {kind} {path(step)}")
    return restored, step, unreadable
  return None, None, unreadable


def _none_restored(unreadable, path: Callable[[int], str]) -> str:
  tried = "; ".join(f"{path(step)}: {reason}" for step, reason in unreadable)
  return (f"no checkpoint restores ({tried}); if the config differs from the run's, "
          "use the run's (WORKDIR/config.json)")


def _first_line(error: Exception) -> str:
  text = str(error).strip()
  line = text.splitlines()[0] if text else ""
  line = f"{type(error).__name__}: {line}" if line else type(error).__name__
  return line if len(line) <= 300 else line[:297] + "..."
