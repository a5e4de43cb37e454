"""Same data, both frameworks: a model and its PyTorch twin trained side by side.

    python -m vmr_jax.tools.compare --config=configs/cmhn_synthetic.py [--workdir=DIR] \
        [--config.<field>=value ...]

1. Builds the config's model (`vmr_jax.train.setup`) and its PyTorch twin
   (`vmr_jax.tools.twins`), and copies the JAX initial variables into the twin:
   both start from the same weights (the GloVe table included).
2. Trains each for `train.num_steps` on the same batches in the same order (two
   iterators of the training split with the same seed), with the same optimizer,
   learning-rate schedule and gradient clipping (Adam in both; PyTorch's Adam and
   optax's are the same update). Dropout and RReLU draw their own random numbers in
   each framework, so the two runs differ by that noise alone.
3. Evaluates the final weights of both on `eval.test_split` with the same code
   (`vmr_jax.evaluate.prediction_records` / `metrics_of_records`: NMS, R@n, mIoU),
   and the JAX final weights once more through a twin (row "twin, JAX weights"):
   equal to the JAX row, it shows that a gap between the first two rows comes from
   training, not from either framework's forward pass or decoding.
Prints the training losses side by side every `train.log_every` steps, then R@1 at
IoU 0.5 and 0.7, mIoU and the wall time of each framework's training (the first JAX
step, which compiles, is reported apart). With `--workdir`, writes `compare.json`.
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags, logging
import jax
import numpy as np

from vmr_jax import config_files


def train_jax(run, config):
  """Trains `run.state`; returns (final variables, losses, compile s, train s)."""
  from vmr_jax import sharding, train
  mesh = run.mesh
  step_fn = jax.jit(train.make_train_step(run.model, run.spec, config, run.lr_fn),
                    in_shardings=(sharding.replicated(mesh), sharding.data_sharded(mesh)),
                    out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)))
  sharding.check_batch_size(config.train.batch_size, mesh)
  batches = run.pipeline.train_iterator(config.train.batch_size, config.seed)
  state, losses, compile_seconds = run.state, [], 0.0
  start = time.perf_counter()
  for step in range(config.train.num_steps):
    state, metrics = step_fn(state, sharding.host_to_global(next(batches), mesh))
    losses.append(float(metrics["loss"]))  # waits for the step
    if step == 0:
      compile_seconds = time.perf_counter() - start
      start = time.perf_counter()
  return state.variables, losses, compile_seconds, time.perf_counter() - start


def train_torch(twin, run, config):
  """Trains the twin on the same batches; returns (losses, train s)."""
  import torch
  from vmr_jax import sharding
  from vmr_jax.tools import twins
  cfg = config.train
  if cfg.optimizer != "adam":
    raise ValueError(f"compare trains the twin with Adam only, not {cfg.optimizer!r}")
  parameters = [p for p in twin.parameters() if p.requires_grad]
  optimizer = torch.optim.Adam(parameters, lr=float(run.lr_fn(0)))
  sharding.check_batch_size(cfg.batch_size, run.mesh)
  batches = run.pipeline.train_iterator(cfg.batch_size, config.seed)
  twin.train()
  losses = []
  start = time.perf_counter()
  for step in range(cfg.num_steps):
    batch = twins.to_torch(next(batches))
    for group in optimizer.param_groups:
      group["lr"] = float(run.lr_fn(step))
    optimizer.zero_grad()
    loss, _ = twin.loss(twin(batch), batch)
    loss.backward()
    if cfg.grad_clip_norm:
      torch.nn.utils.clip_grad_norm_(parameters, cfg.grad_clip_norm)
    optimizer.step()
    losses.append(loss.item())
  return losses, time.perf_counter() - start


def evaluate_torch(twin, run, config, split: str) -> dict[str, float]:
  """The twin's metrics on `split`, by the evaluator's own record and metric code."""
  import torch
  from vmr_jax import evaluate
  from vmr_jax.tools import twins
  twin.eval()
  records = []
  thresholds = tuple(config.eval.iou_thresholds or run.pipeline.metadata["iou_thresholds"])
  with torch.no_grad():
    for batch in run.pipeline.eval_iterator(split, config.eval.batch_size):
      tensors = twins.to_torch(batch)
      ranked = twin.decode(twin(tensors), tensors).numpy()
      records += evaluate.prediction_records(batch, ranked, config.eval.nms_threshold,
                                             max(config.eval.recall_at),
                                             **evaluate.protocol_options(config, thresholds))
  return evaluate.metrics_of_records(records, tuple(config.eval.recall_at), thresholds)


def compare(config) -> dict:
  """Trains and evaluates both frameworks; returns the side-by-side results."""
  from vmr_jax import evaluate, train
  from vmr_jax.tools import twins
  from vmr_jax.tools.twins import convert
  run = train.setup(config)
  words = run.state.params["text_encoder"]["embedding"]["embedding"]  # [V, d]
  twin = twins.create(config, run.pipeline.feature_dim, words.shape[0],
                                  words.shape[1])
  convert.load_flax(twin, jax.device_get(run.state.variables))
  variables, jax_losses, compile_seconds, jax_seconds = train_jax(run, config)
  torch_losses, torch_seconds = train_torch(twin, run, config)
  for step in range(0, config.train.num_steps, config.train.log_every):
    print(f"step {step + 1:6d}  loss JAX {jax_losses[step]:10.4f}  "
          f"PyTorch {torch_losses[step]:10.4f}")
  split = config.eval.test_split
  jax_metrics = evaluate.Evaluator(run.model, run.spec, config, run.pipeline,
                                   run.mesh).run(variables, split)
  torch_metrics = evaluate_torch(twin, run, config, split)
  convert.load_flax(twin, jax.device_get(variables))
  twin_on_jax_weights = evaluate_torch(twin, run, config, split)
  return {
      "config": config.model, "steps": config.train.num_steps, "split": split,
      "jax": {**jax_metrics, "train_seconds": jax_seconds, "compile_seconds": compile_seconds,
              "final_loss": float(np.mean(jax_losses[-config.train.log_every:]))},
      "pytorch": {**torch_metrics, "train_seconds": torch_seconds,
                  "final_loss": float(np.mean(torch_losses[-config.train.log_every:]))},
      "twin_on_jax_weights": twin_on_jax_weights,
  }


def table(result: dict) -> str:
  names = ("R@1,IoU=0.5", "R@1,IoU=0.7", "mIoU")
  lines = [f"{result['config']}, {result['steps']} steps, {result['split']} split",
           f"{'':18s}" + "".join(f"{n:>13s}" for n in names)
           + f"{'train s':>10s}{'final loss':>12s}"]
  for framework in ("jax", "pytorch"):
    row = result[framework]
    lines.append(f"{framework:18s}" + "".join(f"{100 * row[n]:13.2f}" for n in names)
                 + f"{row['train_seconds']:10.1f}{row['final_loss']:12.4f}")
  row = result["twin_on_jax_weights"]
  lines.append(f"{'twin, JAX weights':18s}" + "".join(f"{100 * row[n]:13.2f}" for n in names))
  lines.append(f"(JAX's first step, compiling: {result['jax']['compile_seconds']:.1f} s, "
               "not in its train s)")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  result = compare(flags.FLAGS.config)
  print(table(result))
  if flags.FLAGS.workdir:
    os.makedirs(flags.FLAGS.workdir, exist_ok=True)
    with open(os.path.join(flags.FLAGS.workdir, "compare.json"), "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":  # flags only for the command line: the module imports cleanly
  config_files.DEFINE_config_file("config", "Model config file (see vmr_jax.config_files).")
  flags.DEFINE_string("workdir", None, "Where to write compare.json.")
  flags.mark_flag_as_required("config")
  app.run(main)
