"""`--mode=eval`, `--mode=export` and `--mode=predict`: a trained checkpoint on a
split, as a model export, or on one video."""

from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np

from vmr_jax import checkpoints, distributed, evaluate, export, train
from vmr_jax.predictor import Predictor


def restore(config, workdir: str, which: str) -> tuple[train.Setup, int]:
  """The setup with `which` ("best" | "latest") checkpoint's state in it (or the
  newest readable one, `checkpoints.Checkpoints`)."""
  run = train.setup(config)
  ckpt = checkpoints.Checkpoints(workdir, config.train.keep_checkpoints,
                                 config.eval.best_metric)
  if which == "best":
    run.state, step = ckpt.restore_best(run.state)
  else:
    run.state, _, step = ckpt.restore_latest(run.state)
  ckpt.close()
  return run, step


def evaluate_checkpoint(config, workdir: str, which: str, split: str) -> dict[str, float]:
  run, step = restore(config, workdir, which)
  evaluator = evaluate.Evaluator(run.model, run.spec, config, run.pipeline, run.mesh)
  result = evaluator.run(run.state.variables, split, workdir=workdir)
  if distributed.is_main():
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


def export_checkpoint(config, workdir: str, which: str, directory: str) -> str:
  """Writes `which` checkpoint as a model export (`vmr_jax.export`) to `directory`."""
  run, step = restore(config, workdir, which)
  export.write(directory, config, run.state.variables, run.pipeline.vocab.words,
               run.pipeline.feature_dim, step)
  return directory


def predict(config, workdir: str, which: str, sentences: Sequence[str], *,
            video: str | None, split: str, features: str | None,
            duration: float | None, top_n: int = 5) -> list[list[list[float]]]:
  """Prints and returns, per sentence, its top moments [[start, end, score], ...] in
  `video` of `split`, or in the clip features of the .npy file `features` [clips, D]
  of `duration` seconds: `vmr_jax.Predictor` on the restored checkpoint."""
  run, step = restore(config, workdir, which)
  if features is not None:
    if duration is None:
      raise ValueError("--features needs --duration (seconds)")
    clips, video = np.load(features), video or os.path.basename(features)
  elif video is not None:
    clips, duration = run.pipeline.video_features(split, video)
  else:
    raise ValueError("give a video id (--video) or a features file (--features)")
  exported = export.Exported(config, run.spec, run.model, jax.device_get(run.state.variables),
                             list(run.pipeline.vocab.words), run.pipeline.feature_dim, step)
  predictor = Predictor(exported)  # this process's devices
  predictor.encode({video: clips}, {video: duration})
  results = [moments.tolist() for moments in predictor.localize(video, sentences, top_n)]
  for sentence, moments in zip(sentences, results):
    if distributed.is_main():
      print(sentence)
      for start, end, score in moments:
        print(f"  {start:8.2f} - {end:8.2f} s   score {score:.3f}")
  return results
