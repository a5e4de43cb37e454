"""Every paper config measured on an accelerator in one command, written as it goes:

    python -m vmr_jax.tools.bench --suite=device --out=DIR [--suite_configs=NAME,...]
        [--suite_dtypes=float32,bfloat16] [--suite_size=tiny] [--suite_steps=5]
        [--suite_budget=440] [--suite_twin_on_cpu]

For each paper config (`costs.paper_configs()`: `configs/*_tacos.py`,
`*_activitynet.py`, `*_charades.py`; or the `--suite_configs` names) in each compute
dtype (float32 and bfloat16, `config.train.compute_dtype`; or the `--suite_dtypes`),
on a random batch of the config's shapes (`train.batch_size` videos with
`data.max_queries` queries, or pairs; `data.num_clips` clips of the dataset's feature
size, `costs.DATASETS`; BERT replaced by GloVe-sized random vectors + BiGRU, as in
`bench --config` and the twins; `model_bench`):

- `step_ms`: the trainer's JAX train step (data parallel over the local devices, the
  state donated), the mean of `--suite_steps` steps after a first one;
- `twin`: the same Adam step of the model's PyTorch twin (`vmr_jax.tools.twins`,
  float32, from the same weights), in the float32 job, on the GPU where
  `torch.cuda.is_available()`; where torch sees no GPU only with
  `--suite_twin_on_cpu` (the test's tiny run), else recorded as skipped. On a GPU
  the tensors the twins make as they run get there by `torch.set_default_device`
  (a Python hook on every torch call); no twin has yet run on a GPU, so a failure
  is recorded as the twin's `error`, and the JAX measurements go on;
- `eval_queries_per_second`: the evaluation forward + decode on the same batch;
- `peak_bytes`: `peak_bytes_in_use` of the first local device's `memory_stats()` after
  the timed steps (everything JAX allocated in the job: weights, batch, init and
  steps; None where the backend keeps no count, as the CPU), against
  `predicted_peak_bytes`: XLA's memory analysis of the same compiled step
  (`costs.compiled_costs`, what `bench --memory` tabulates), with its `parameters`
  and `dot_gflops`; `compile_seconds` and the job's `job_seconds`.

Then the collection search, `corpus_speed.corpus_comparison` at `bench`'s `--moments`,
`--moments_per_video`, `--code_bits`, `--corpus_dim`, `--corpus_queries` and
`--corpus_k` (`results`: `{"cmhn" | "fvmr": {method: [seconds a batch, same top-k as
JAX]}}`), `--suite_steps` batches.

Each measurement (a job) runs in a process of its own (`python -m
vmr_jax.tools.device_suite JOB RESULT`): a device's peak-memory count only rises, a
TPU serves one process at a time, and an out-of-memory error ends only its job. The
suite's own process never touches the device. Jobs get
XLA_PYTHON_CLIENT_PREALLOCATE=false, so that JAX and torch share a GPU (the twin runs
first, then empties torch's cache).

Batch: the config's own; where XLA predicts a step past the device's memory
(`bytes_limit`) or the step runs out of memory, the job runs again at half the batch:
`batch` records what ran, `config_batch` the config's, `reduced` why.
Time: `--suite_budget` seconds in all (default 440 s, under 8 minutes): a job gets the
time left (at most `JOB_SECONDS`), none starts with under `MIN_JOB_SECONDS` left
(recorded as skipped, the commands that measure the rest printed); a timed loop runs
fewer steps where its warm-up call says they would take over `LOOP_SECONDS`
(`steps` records how many ran). The float32 jobs of every config come first, then
the bfloat16 ones, after the search.

`--suite_size=tiny`: each config shrunk (`shrink_tiny`), `TINY_FEATURE_DIM` clip
features and a 2,000-moment search (`TINY_SEARCH`): sizes for a test on a CPU.

DIR/device_suite.json, rewritten after each job: `{"suite": {size, steps,
budget_seconds, configs, dtypes, seconds}, "device": {platform, device_kind, device_count},
"versions": {package: version}, "configs": {NAME: {"float32": JOB, "bfloat16": JOB,
"twin": TWIN}}, "search": {sizes, steps, status, results}}`; a JOB has "status" ("ok",
"error" with "error", "skipped" with "reason") and the fields above.
DIR/device_suite.md: the same as tables.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import jax

from vmr_jax import registry
from vmr_jax.configs import default
from vmr_jax.tools import corpus_speed, costs, model_bench

DTYPES = ("float32", "bfloat16")
LOOP_SECONDS = 10.0  # the longest timed loop (train steps, twin steps, evaluations)
JOB_SECONDS = 150.0  # the longest job
MIN_JOB_SECONDS = 20.0  # no job starts with less of the budget left
# Tiny: the model's "small" demo sizes (`default.shrink`), then these.
TINY = {"train.batch_size": 2, "data.max_queries": 2, "data.max_words": 6}
# ActivityNet's released CLEAR pools 4 clips a map unit: 32 small clips would leave 8.
TINY_MODEL = {"clear": {"clear.frame_pool": 2}}
TINY_FEATURE_DIM = 16  # clip features (the datasets' are 500 to 4096)
TINY_SEARCH = {"moments": 2000, "per_video": 50, "bits": 64, "dim": 32, "queries": 8,
               "k": 10}
VERSIONS = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "torch", "numpy")
_MODULE = "vmr_jax.tools.device_suite"
_OOM = re.compile(r"RESOURCE_EXHAUSTED|out of memory", re.IGNORECASE)
GIB, MIB = 2 ** 30, 2 ** 20


def shrink_tiny(config) -> None:
  """`config` at test sizes: its model's "small" demo fields (in its reading), then
  `TINY` and `TINY_MODEL`'s."""
  model = config.model
  default.shrink(config, "small", config[model].get("reading", ""),
                 registry.demo_sizes(model))
  default.set_fields(config, {**TINY, **TINY_MODEL.get(model, {})})


def load(name: str, size: str):
  """Paper config `name` at `size` ("paper" or "tiny")."""
  config = costs.load(name)
  if size == "tiny":
    shrink_tiny(config)
  return config


# ---- a job, in its own process ----

def run_job(job: dict) -> dict:
  """The result of `job`: `{"kind": "config", "config": NAME, "dtype", "size", "steps",
  "batch_size", "twin_on_cpu"}` or `{"kind": "search", "steps", **TINY_SEARCH's keys}`.
  An exception becomes status "error" ("oom" where the device ran out of memory)."""
  try:
    return _config_job(job) if job["kind"] == "config" else _search_job(job)
  except Exception as e:  # the suite records it and goes on
    message = f"{type(e).__name__}: {e}"
    return {"status": "oom" if _OOM.search(message) else "error", "error": message[:2000]}


def _device() -> dict:
  device = jax.devices()[0]
  return {"platform": device.platform, "device_kind": device.device_kind,
          "device_count": jax.device_count()}


def _memory_stats() -> dict:
  return jax.devices()[0].memory_stats() or {}


def _config_job(job: dict) -> dict:
  config = load(job["config"], job["size"])
  config_batch = costs.describe_batch(config)
  config.train.batch_size = job["batch_size"]
  config.train.compute_dtype = job["dtype"]
  feature_dim, vocab = costs.dataset_sizes(config)
  if job["size"] == "tiny":
    feature_dim = TINY_FEATURE_DIM
  prepared = model_bench.prepare(config, feature_dim, vocab)
  twin = ({"twin": _twin(prepared, job["steps"], job["twin_on_cpu"])}
          if job["dtype"] == "float32" else {})
  step = model_bench.compile_train_step(prepared, job["config"])
  limit = _memory_stats().get("bytes_limit")
  out = {"batch": costs.describe_batch(config), "batch_size": config.train.batch_size,
         "config_batch": config_batch, "clips": config.data.num_clips,
         "feature_dim": feature_dim, "vocab": vocab, "parameters": step.costs.parameters,
         "dot_gflops": step.costs.dot_flops / 1e9,
         "predicted_peak_bytes": step.costs.peak_bytes, "bytes_limit": limit,
         "compile_seconds": step.compile_seconds, "device": _device()}
  if limit and step.costs.peak_bytes > limit:
    return {"status": "too_big", **out}
  seconds, steps = model_bench.time_train_step(step, prepared, job["steps"], LOOP_SECONDS)
  peak = _memory_stats().get("peak_bytes_in_use")
  speed = model_bench.eval_queries_per_second(prepared, step.state.variables, job["steps"],
                                              LOOP_SECONDS)
  return {"status": "ok", **out, "step_ms": 1000 * seconds, "steps": steps,
          "peak_bytes": peak, "eval_queries_per_second": speed, **twin}


def _twin(prepared: model_bench.Prepared, steps: int, on_cpu: bool) -> dict:
  """The twin's step time (see the module docstring), or why there is none."""
  from vmr_jax.tools import twins
  if not twins.has(prepared.config.model):
    return {"skipped": f"no PyTorch twin of {prepared.config.model}"}
  import torch
  device = "cuda" if torch.cuda.is_available() else "cpu"
  if device == "cpu" and not on_cpu:
    return {"skipped": "torch sees no GPU (--suite_twin_on_cpu times it on the CPU)"}
  try:
    step, where = model_bench.torch_step(prepared, device)
    seconds, count = model_bench.timed(step, steps, warmup=2, max_seconds=LOOP_SECONDS)
    result = {"step_ms": 1000 * seconds, "steps": count, "torch": where}
  except Exception as e:  # e.g. out of GPU memory where JAX fits
    result = {"error": f"{type(e).__name__}: {e}"[:2000]}
  step = None  # frees the twin's model and optimizer
  gc.collect()
  if device == "cuda":
    torch.cuda.empty_cache()  # for JAX's steps
  return result


def _search_job(job: dict) -> dict:
  sizes = {k: job[k] for k in TINY_SEARCH}
  results = corpus_speed.corpus_comparison(**sizes, steps=job["steps"])
  return {"status": "ok", "results": results, "limits": corpus_speed.machine_limits(),
          "device": _device()}


# ---- the suite ----

def run_suite(out_dir: str, names: list[str], dtypes: list[str], size: str, steps: int,
              budget: float, twin_on_cpu: bool, search: dict) -> dict:
  """Runs the jobs (module docstring), writing `out_dir`/device_suite.{json,md} after
  each; `search`: corpus_comparison's sizes (`TINY_SEARCH`'s keys). The report."""
  start = time.perf_counter()
  os.makedirs(out_dir, exist_ok=True)
  report = {"suite": {"size": size, "steps": steps, "budget_seconds": budget,
                      "configs": names, "dtypes": dtypes, "seconds": 0.0},
            "device": None, "versions": versions(), "search": {**search, "steps": steps},
            "configs": {name: {} for name in names}}

  def left() -> float:
    return budget - (time.perf_counter() - start)

  def save(line: str) -> None:
    report["suite"]["seconds"] = time.perf_counter() - start
    write(out_dir, report)
    print(f"[{report['suite']['seconds']:4.0f} s] {line}", flush=True)

  save(f"{len(names)} configs x {len(dtypes)} dtypes ({size} sizes, {steps} steps) and "
       f"the search, in {budget:.0f} s at most; writing {out_dir}/device_suite.json")
  result = _within_budget({"kind": "search", **search, "steps": steps}, left)
  report["search"].update(result)
  _take_device(report, result)
  save(f"search: {_search_line(result)}")
  for dtype in dtypes:
    for name in names:
      result = _config_entry(name, dtype, size, steps, twin_on_cpu, left)
      if "twin" in result:
        report["configs"][name]["twin"] = result.pop("twin")
      _take_device(report, result)
      report["configs"][name][dtype] = result
      save(f"{name} {dtype}: {_config_line(result, report['configs'][name].get('twin'))}")
  for dtype in dtypes:
    skipped = [n for n in names if report["configs"][n][dtype]["status"] == "skipped"]
    if skipped:
      print(f"not measured in the budget: --suite_configs={','.join(skipped)} "
            f"--suite_dtypes={dtype} (with another --out) measures them", flush=True)
  return report


def _config_entry(name, dtype, size, steps, twin_on_cpu, left) -> dict:
  """The job of `name` in `dtype` at its config's batch, halved while it does not fit."""
  batch_size, reduced = load(name, size).train.batch_size, []
  while True:
    result = _within_budget({"kind": "config", "config": name, "dtype": dtype, "size": size,
                             "steps": steps, "batch_size": batch_size,
                             "twin_on_cpu": twin_on_cpu}, left)
    if result["status"] == "too_big":
      why = (f"XLA predicts {_size(result['predicted_peak_bytes'])}, the device has "
             f"{_size(result['bytes_limit'])}")
    elif result["status"] == "oom":
      why = f"out of memory ({result['error'][:200]})"
    else:
      break
    reduced.append(f"batch {batch_size}: {why}")
    if batch_size == 1:
      result = {"status": "error", "error": f"does not fit at batch 1: {why}"}
      break
    batch_size //= 2
  if reduced:
    result["reduced"] = reduced
  return result


def _within_budget(job: dict, left) -> dict:
  """`job`'s result with its wall time (`job_seconds`: the process's start included),
  or skipped where the budget leaves too little."""
  if left() < MIN_JOB_SECONDS:
    return {"status": "skipped", "reason": "the suite's time budget ran out"}
  start = time.perf_counter()
  result = _run_child(job, min(left(), JOB_SECONDS))
  return {**result, "job_seconds": time.perf_counter() - start}


def _run_child(job: dict, timeout: float) -> dict:
  """`run_job(job)` in a process of its own, killed after `timeout` s."""
  env = {**os.environ}
  env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "result.json")
    try:
      done = subprocess.run([sys.executable, "-m", _MODULE, json.dumps(job), path], env=env,
                            timeout=timeout)
    except subprocess.TimeoutExpired:
      return {"status": "error", "error": f"timed out after {timeout:.0f} s"}
    if not os.path.exists(path):
      return {"status": "error", "error": f"exit code {done.returncode}, no result"}
    with open(path) as f:
      return json.load(f)


def _take_device(report: dict, result: dict) -> None:
  device = result.pop("device", None)
  if report["device"] is None:
    report["device"] = device


def versions() -> dict:
  """The installed versions of `VERSIONS` (None: not installed)."""
  out = {}
  for name in VERSIONS:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


# ---- reading the report ----

def _size(n) -> str:
  if n is None:
    return "-"
  return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.1f} MiB"


def _failure(entry: dict) -> str | None:
  """Why `entry` (a job's result) has no measurement, or None."""
  if "status" not in entry:
    return "not measured yet"
  if entry["status"] == "skipped":
    return f"skipped: {entry['reason']}"
  if entry.get("status") != "ok":
    return f"{entry.get('status')}: {entry.get('error', '')}"
  return None


def _config_line(entry: dict, twin: dict | None) -> str:
  failure = _failure(entry)
  if failure:
    return failure[:300]
  twin_text = f", twin {twin['step_ms']:.1f} ms" if twin and "step_ms" in twin else ""
  return (f"{entry['step_ms']:.1f} ms/step at {entry['batch']}{twin_text}, "
          f"{entry['eval_queries_per_second']:,.0f} queries/s, peak "
          f"{_size(entry['peak_bytes'])} (predicted {_size(entry['predicted_peak_bytes'])})")


def _search_line(search: dict) -> str:
  failure = _failure(search)
  if failure:
    return failure[:300]
  return "; ".join(f"{model} " + ", ".join(f"{method} {1000 * s:.1f} ms" for method, (s, _)
                                           in row.items())
                   for model, row in search["results"].items())


def markdown(report: dict) -> str:
  """The report as markdown: a row per config and dtype, then the search table."""
  device, suite = report["device"] or {}, report["suite"]
  lines = ["# Device suite", "",
           f"{device.get('device_count', '?')} x {device.get('device_kind', '?')} "
           f"({device.get('platform', '?')}); "
           + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v)
           + f". {suite['size']} sizes, {suite['steps']} timed steps, "
           f"{suite['seconds']:.0f} s.", "",
           "## Train steps, evaluation, memory", "",
           "| config | dtype | batch | ms/step JAX | ms/step twin (float32) | twin / JAX | "
           "eval queries/s | peak measured | peak predicted (XLA) |",
           "|" + " --- |" * 9]
  notes = []
  for name, entries in report["configs"].items():
    twin = entries.get("twin") or {}
    twin_ms = twin.get("step_ms")
    if "step_ms" not in twin and twin:
      notes.append(f"{name} twin: {twin.get('skipped') or twin.get('error')}")
    for dtype in suite["dtypes"]:
      entry = entries.get(dtype, {})
      failure = _failure(entry)
      if failure:
        notes.append(f"{name} {dtype}: {failure}")
        lines.append(f"| {name} | {dtype} |" + " - |" * 7)
        continue
      for reason in entry.get("reduced", []):
        notes.append(f"{name} {dtype}: batch reduced from {entry['config_batch']} "
                     f"({reason})")
      cells = [name, dtype, entry["batch"], f"{entry['step_ms']:,.2f}",
               f"{twin_ms:,.2f}" if twin_ms else "-",
               f"{twin_ms / entry['step_ms']:.2f}x" if twin_ms else "-",
               f"{entry['eval_queries_per_second']:,.0f}", _size(entry["peak_bytes"]),
               _size(entry["predicted_peak_bytes"])]
      lines.append("| " + " | ".join(cells) + " |")
  lines += [""] + [f"- {note}" for note in notes] + ([""] if notes else [])
  search = report["search"]
  lines += ["## Collection search", "",
            f"{search['moments']:,} moments ({search['per_video']} a video), "
            f"{search['queries']} sentences a batch, top {search['k']}, "
            f"{search['steps']} batches.", ""]
  failure = _failure(search)
  if not failure:
    failure = corpus_speed.markdown(search["results"], search["limits"], search["moments"],
                                    search["bits"], search["dim"], search["queries"])
  lines.append(failure)
  return "\n".join(lines) + "\n"


def write(out_dir: str, report: dict) -> None:
  """`out_dir`/device_suite.json and .md, each replaced whole."""
  for name, text in (("device_suite.json", json.dumps(report, indent=1)),
                     ("device_suite.md", markdown(report))):
    path = os.path.join(out_dir, name)
    with open(path + ".tmp", "w") as f:
      f.write(text)
    os.replace(path + ".tmp", path)


def main(argv: list[str]) -> None:
  """`python -m vmr_jax.tools.device_suite JOB_JSON RESULT_PATH`: one job."""
  _, job, path = argv
  result = run_job(json.loads(job))
  with open(path, "w") as f:
    json.dump(result, f, default=lambda x: x.item())  # numpy scalars


if __name__ == "__main__":
  main(sys.argv)
