"""`--mode=eval` and `--mode=predict`: a trained checkpoint on a split or one video."""

from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np

from vmr_jax import checkpoints, evaluate, metrics, sharding, train


def restore(config, workdir: str, which: str) -> tuple[train.Setup, int]:
  """The setup with `which` ("best" | "latest") checkpoint's state in it."""
  run = train.setup(config)
  ckpt = checkpoints.Checkpoints(workdir, config.train.keep_checkpoints,
                                 config.eval.best_metric)
  if which == "best":
    run.state, step = ckpt.restore_best(run.state)
  else:
    if ckpt.latest_step() is None:
      raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, 'checkpoints')}")
    run.state, _ = ckpt.restore_latest(run.state)
    step = int(run.state.step)
  ckpt.close()
  return run, step


def evaluate_checkpoint(config, workdir: str, which: str, split: str) -> dict[str, float]:
  run, step = restore(config, workdir, which)
  evaluator = evaluate.Evaluator(run.model, run.spec, config, run.pipeline, run.mesh)
  result = evaluator.run(run.state.variables, split, workdir=workdir)
  print(evaluate.table(result, f"{split} ({which} checkpoint, step {step})"))
  return result


def read_sentences(inline: str | None, path: str | None) -> list[str]:
  if path:
    with open(path) as f:
      sentences = [line.strip() for line in f if line.strip()]
  else:
    sentences = [s.strip() for s in (inline or "").split(";") if s.strip()]
  if not sentences:
    raise ValueError("give sentences with --sentences='a;b' or --sentences_file")
  return sentences


def predict(config, workdir: str, which: str, sentences: Sequence[str], *,
            video: str | None, split: str, features: str | None,
            duration: float | None, top_n: int = 5) -> list[list[list[float]]]:
  """Prints and returns, per sentence, its top moments [[start, end, score], ...]."""
  run, _ = restore(config, workdir, which)
  batch = run.pipeline.single_video_batch(sentences, video=video, split=split,
                                          features=_load(features), duration=duration)
  predict_fn = jax.jit(evaluate.make_predict_fn(run.model, run.spec, config))
  ranked, _ = predict_fn(run.state.variables, sharding.numeric(batch))
  ranked = np.asarray(ranked).reshape(len(sentences), -1, 3)
  results = []
  for sentence, moments in zip(sentences, ranked):
    kept = metrics.nms(moments[np.isfinite(moments[:, 2])], config.eval.nms_threshold,
                       top_n)
    results.append(kept.tolist())
    print(sentence)
    for start, end, score in kept:
      print(f"  {start:8.2f} - {end:8.2f} s   score {score:.3f}")
  return results


def _load(path: str | None):
  return None if path is None else np.load(path)
