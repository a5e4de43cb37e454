"""`--mode=eval`, `--mode=export` and `--mode=predict`: a trained checkpoint on a
split, as a model export, or on one video."""

from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np

from vmr_jax import checkpoints, distributed, evaluate, export, predictor_inputs, train
from vmr_jax.predictor import Predictor


class InputError(ValueError):
  """Predict's sentences or clip features cannot be used (the message names them)."""


def restore(config, workdir: str, which: str, pipeline=None) -> tuple[train.Setup, int]:
  """The setup (on `pipeline`, default `train.make_pipeline`'s) with `which` ("best" |
  "latest") checkpoint's state in it (or the newest readable one,
  `checkpoints.Checkpoints`)."""
  run = train.setup(config, pipeline)
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
  """The sentences of `path` (one a line, blank lines skipped) or else of `inline`
  ("a;b"; an empty entry is skipped with a warning)."""
  if path:
    try:
      with open(path) as f:
        sentences = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
      raise InputError(f"--sentences_file {path} is not a readable text file ({e})") from None
  else:
    entries = [s.strip() for s in (inline or "").split(";")]
    sentences = [s for s in entries if s]
    if sentences and len(sentences) < len(entries):
      empty = [str(i + 1) for i, s in enumerate(entries) if not s]
      distributed.warn(f"--sentences {predictor_inputs.shortened(inline)!r}: skipped the "
                       f"empty entr{'y' if len(empty) == 1 else 'ies'} {', '.join(empty)} "
                       f"of {len(entries)}")
  if not sentences:
    raise InputError("give sentences with --sentences='a;b' or --sentences_file")
  return sentences


def read_features(path: str) -> np.ndarray:
  """The clip features `[clips, D]` of the .npy file `path`."""
  try:
    clips = np.load(path)
  except (OSError, ValueError) as e:
    raise InputError(f"--features {path} is not a readable .npy file ({e})") from None
  if not isinstance(clips, np.ndarray) or clips.ndim != 2 or not len(clips):
    raise InputError(f"--features {path}: clip features must be one array [clips >= 1, "
                     f"D], got {getattr(clips, 'shape', type(clips).__name__)}")
  return clips


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
  of `duration` seconds: `vmr_jax.Predictor` on the restored checkpoint. The video
  is read before the model is built (an unknown one is a `NotInDatasetError`)."""
  if features is not None:
    if duration is None or not duration > 0:
      raise InputError(f"--features needs --duration (seconds > 0), got {duration}")
    clips, video = read_features(features), video or os.path.basename(features)
  elif video is None:
    raise InputError("give a video id (--video) or a features file (--features)")
  pipeline = train.make_pipeline(config)
  if features is None:
    clips, duration = pipeline.video_features(split, video)
  elif clips.shape[1] != pipeline.feature_dim:
    raise InputError(f"--features {features}: {clips.shape[1]} features a clip, the "
                     f"model's dataset has {pipeline.feature_dim}")
  run, step = restore(config, workdir, which, pipeline)
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
