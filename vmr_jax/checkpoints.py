"""Orbax checkpoints: the latest for resuming, the best by a validation metric.

`WORKDIR/checkpoints/<step>` holds the train state and the input pipeline's position
(so a resumed run reads the same batches as an uninterrupted one); the newest
`keep` are kept. `WORKDIR/best/<step>` holds the train state with the highest
validation metric. Saves are atomic (Orbax writes to a temporary folder first), so a
crash never leaves a checkpoint that restores half.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import orbax.checkpoint as ocp


class Checkpoints:
  def __init__(self, workdir: str, keep: int = 2, best_metric: str = ""):
    self.best_metric = best_metric
    self._latest = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))
    self._best = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "best"),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, enable_async_checkpointing=False,
            best_fn=lambda m: m[best_metric], best_mode="max"))

  def latest_step(self) -> int | None:
    return self._latest.latest_step()

  def save_latest(self, step: int, state: Any, data_state: Mapping[str, int]) -> None:
    self._latest.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(dict(data_state))),
        force=True)

  def restore_latest(self, abstract_state: Any) -> tuple[Any, dict[str, int]]:
    step = self._latest.latest_step()
    restored = self._latest.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], dict(restored["data"])

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
    step = self._best.best_step()
    if step is None:
      raise FileNotFoundError("no best checkpoint: no evaluation has run yet")
    restored = self._best.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"], step

  def close(self) -> None:
    self._latest.close()
    self._best.close()
