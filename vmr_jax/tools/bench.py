"""Benchmarks, JAX against the PyTorch equivalent, measured in one run.

    python -m vmr_jax.tools.bench --config=configs/cmhn_synthetic.py [--steps=N]
        [--feature_dim=D] [--eval_variants=FIELD=V1,V2] [--config.<field>=value ...]
    python -m vmr_jax.tools.bench --task=bert [--sentences=PATH] [--bert_dir=DIR]
        [--batch_size=64] [--limit=N]
    python -m vmr_jax.tools.bench --memory [--memory_configs=NAME,... | --config=FILE
        --config.<field>=value ...] [--memory_dtypes=float32,bfloat16] [--peak_fraction=0.4]
    python -m vmr_jax.tools.bench --suite=device --out=DIR [--suite_configs=NAME,...]
        [--suite_dtypes=float32,bfloat16] [--suite_size=tiny] [--suite_steps=5]
        [--suite_budget=440] [--suite_twin_on_cpu]

`--config` (a model): a random batch of the config's shapes (`train.batch_size`
videos with `data.max_queries` queries each, or `train.batch_size` (video, query)
pairs for query-level models; `data.num_clips` clips of `--feature_dim`, queries of
`data.max_words` words). Times the compile and the jit train step on all local
devices (data parallel, the state donated, as the trainer runs it;
`vmr_jax.tools.model_bench`), the evaluation forward + decode
(queries/s), and the same train step of the model's PyTorch twin
(`vmr_jax.tools.twins`, eager, Adam; the twin tests check that it computes the
same loss and gradients) from the same initial weights on the same machine, then
prints the ratio. `--eval_variants=clear.search=pruned,exhaustive` times the evaluation with
each value of that config field instead (same parameters and batch, one run). The
text encoder is GloVe-sized random vectors + BiGRU on both sides (the PyTorch side
has no BERT of ours to match) where the config has BERT, else the config's own
GloVe-sized encoder; the rest is the config's. The JAX side computes in
`config.train.compute_dtype` (`--config.train.compute_dtype=bfloat16`), the twin in
float32.

`--memory`: what each paper config (`configs/*_tacos.py`, `*_activitynet.py`,
`*_charades.py`; or the `--memory_configs` names; or `--config` alone, with its
overrides) needs at its own batch in each compute dtype: parameters, the compiled
train step's FLOPs and peak memory (XLA's cost and memory analyses,
`vmr_jax.tools.costs`; nothing is run and no data is read), a line per compiled step as it
comes, then a markdown table with what fits a 16 GB GPU and a TPU v2 core and step
times estimated at `--peak_fraction` of each accelerator's peak
(`vmr_jax.tools.costs.ACCELERATORS`).

`--suite=device`: all of the above that a GPU or TPU should measure, in one command of
under 8 minutes: every paper config's train step in float32 and bfloat16, its twin's,
the evaluation's queries/s, the measured peak device memory against XLA's prediction,
and the collection search, into DIR/device_suite.json and .md
(`vmr_jax.tools.device_suite`).

`corpus`: the Predictor's collection search (`predictor.make_corpus_top_k`, sharded
over all local devices) against numpy and, where installed, faiss (`IndexBinaryFlat`,
`IndexFlatIP`; `pip install faiss-cpu`), on random data of `--moments` moments
(`--moments_per_video` a video): CMHN's packed `--code_bits` codes by Hamming
distance and FVMR's `--corpus_dim` embeddings by inner product (sigmoid(p) ranks as
p), a batch of `--corpus_queries` sentences, top `--corpus_k`. Prints a table of
milliseconds per batch and whether each method's top-k scores equal JAX's.

`bert`: encodes every sentence of a TACoS/ActivityNet-format JSON file (default: the
TACoS test split) with BERT, in JAX (`vmr_jax.text.bert`, jit) and in transformers'
PyTorch `BertModel` (eager, `no_grad`), on the same batches: sentences sorted by
length, padded to the batch's longest (rounded up to a multiple of 8, so JAX compiles
a few shapes). Without `--bert_dir` the model is a randomly initialized BERT-base
(12 layers, 768 hidden) with a vocabulary made of the sentences' words. Prints the
compile time, the encode time of each framework, their ratio and the largest
difference between their last hidden states. Imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from absl import app, flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from vmr_jax import config_files
from vmr_jax.tools import corpus_speed, costs, device_suite, model_bench
from vmr_jax.text import bert
from data_pipelines.wordpiece import WordPieceTokenizer
from data_pipelines.words import split_words

_DEFAULT_SENTENCES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                  "annotations", "tacos", "test.json")
_CONFIG = config_files.DEFINE_config_file("config", "Model config to benchmark (see "
                                          "vmr_jax.config_files).")
_STEPS = flags.DEFINE_integer("steps", 50, "Timed train steps per framework.")
_FEATURE_DIM = flags.DEFINE_integer("feature_dim", 500, "Clip feature size.")
_VOCAB = flags.DEFINE_integer("vocab", 2000, "Word vocabulary size.")
_TASK = flags.DEFINE_enum("task", "model", ["model", "bert", "retrieval", "corpus"],
                          "model or retrieval (need --config), bert, or corpus.")
_MOMENTS = flags.DEFINE_integer("moments", 1_000_000, "corpus: moments in the collection.")
_PER_VIDEO = flags.DEFINE_integer("moments_per_video", 200, "corpus: candidates a video.")
_CORPUS_QUERIES = flags.DEFINE_integer("corpus_queries", 64, "corpus: sentences a batch.")
_CORPUS_K = flags.DEFINE_integer("corpus_k", 100, "corpus: moments kept a sentence.")
_CODE_BITS = flags.DEFINE_integer("code_bits", 64, "corpus: CMHN code length.")
_CORPUS_DIM = flags.DEFINE_integer("corpus_dim", 256, "corpus: FVMR common-space width.")
_CORPUS_PARTS = flags.DEFINE_bool("corpus_parts", False, "corpus: time each part of JAX's "
                                  "search alone instead (corpus_speed.parts).")
_GALLERY = flags.DEFINE_list("gallery", ["25", "4083"], "retrieval: videos, queries "
                             "(default: TACoS's test split).")
_SENTENCES = flags.DEFINE_string("sentences", _DEFAULT_SENTENCES,
                                 "Annotation JSON ({vid: {sentences: [...]}}).")
_BERT_DIR = flags.DEFINE_string("bert_dir", "", "transformers BERT checkpoint; "
                                "empty: random BERT-base.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Sentences per batch.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Use only the first N sentences (0: all).")
_MEMORY = flags.DEFINE_bool("memory", False, "Parameters, FLOPs and peak memory of the "
                            "paper configs' train steps (no data).")
_MEMORY_CONFIGS = flags.DEFINE_list("memory_configs", [], "--memory: these configs (names "
                                    "in configs/, NAME:ARG for a reading) only; default: "
                                    "every paper config.")
_MEMORY_DTYPES = flags.DEFINE_list("memory_dtypes", ["float32", "bfloat16"],
                                   "--memory: the compute dtypes to compile.")
_PEAK_FRACTION = flags.DEFINE_float("peak_fraction", 0.4, "--memory: the share of an "
                                    "accelerator's peak FLOP rate the step times assume.")
_SUITE = flags.DEFINE_enum("suite", None, ["device"], "device: every paper config's train "
                           "step (JAX, float32 and bfloat16, and its PyTorch twin), evaluation "
                           "and memory, then the collection search, into --out "
                           "(vmr_jax.tools.device_suite).")
_OUT = flags.DEFINE_string("out", None, "--suite: the directory of device_suite.json, .md.")
_SUITE_DTYPES = flags.DEFINE_list("suite_dtypes", list(device_suite.DTYPES), "--suite: "
                                  "the compute dtypes to measure (the twin comes with "
                                  "float32).")
_SUITE_SIZE = flags.DEFINE_enum("suite_size", "paper", ["paper", "tiny"], "--suite: the "
                                "paper configs' sizes, or tiny ones (a test on a CPU).")
_SUITE_CONFIGS = flags.DEFINE_list("suite_configs", [], "--suite: these paper configs only "
                                   "(names in configs/); default: all.")
_SUITE_STEPS = flags.DEFINE_integer("suite_steps", 5, "--suite: timed steps (and search "
                                    "batches) a measurement.")
_SUITE_BUDGET = flags.DEFINE_float("suite_budget", 440.0, "--suite: seconds for the whole "
                                   "suite; what does not fit is recorded as skipped.")
_SUITE_TWIN_ON_CPU = flags.DEFINE_bool("suite_twin_on_cpu", False, "--suite: time the "
                                       "PyTorch twins on the CPU where torch sees no GPU.")
_EVAL_VARIANTS = flags.DEFINE_string("eval_variants", "", "FIELD=V1,V2,...: time the "
                                     "evaluation with each value of the (str, int or "
                                     "float) config FIELD.")


def read_sentences(path: str) -> list[str]:
  with open(path) as f:
    return [s for entry in json.load(f).values() for s in entry["sentences"]]


def random_bert_base(directory: str, sentences: list[str]) -> None:
  """Writes a random BERT-base checkpoint whose vocab.txt holds the sentences' words."""
  import torch
  import transformers
  words = sorted({w for s in sentences for w in split_words(s)})
  letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
  vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + letters
  vocab += [f"##{c}" for c in letters]
  config = transformers.BertConfig()  # BERT-base sizes
  vocab += [f"[unused{i}]" for i in range(config.vocab_size - len(vocab))]
  with open(os.path.join(directory, "vocab.txt"), "w") as f:
    f.write("\n".join(vocab) + "\n")
  torch.manual_seed(0)
  transformers.BertModel(config).save_pretrained(directory)


def batches(tokenizer: WordPieceTokenizer, sentences: list[str], batch_size: int):
  """Length-sorted batches of (ids [B, L], mask [B, L]), L a multiple of 8."""
  lengths = [len(ids) for ids in tokenizer._tokenizer(sentences)["input_ids"]]
  order = np.argsort(lengths, kind="stable")
  for start in range(0, len(order), batch_size):
    chunk = [sentences[i] for i in order[start:start + batch_size]]
    longest = max(lengths[i] for i in order[start:start + batch_size])
    yield tokenizer.encode(chunk, -(-longest // 8) * 8)


def bench_bert() -> None:
  import torch
  import transformers
  sentences = read_sentences(_SENTENCES.value)
  if _LIMIT.value:
    sentences = sentences[:_LIMIT.value]
  with tempfile.TemporaryDirectory() as tmp:
    directory = _BERT_DIR.value or tmp
    if not _BERT_DIR.value:
      random_bert_base(directory, sentences)
    config, params = bert.load_pretrained(directory)
    tokenizer = WordPieceTokenizer.from_bert_dir(directory, config.vocab_size)
    torch_model = transformers.BertModel.from_pretrained(directory).eval()
  data = list(batches(tokenizer, sentences, _BATCH_SIZE.value))
  print(f"{len(sentences)} sentences, {len(data)} batches of <= {_BATCH_SIZE.value}, "
        f"{sum(int(m.sum()) for _, m in data)} tokens; BERT {config.num_hidden_layers} "
        f"layers x {config.hidden_size}; devices: {jax.devices()}, "
        f"torch threads {torch.get_num_threads()}")

  params = jax.device_put(params)
  encode = jax.jit(lambda p, ids, mask: bert.BertModel(config).apply({"params": p}, ids,
                                                                     mask)[0])
  start = time.perf_counter()
  for shape in sorted({ids.shape for ids, _ in data}):
    encode.lower(params, jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)).compile()
    encode(params, jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)).block_until_ready()
  compile_seconds = time.perf_counter() - start

  start = time.perf_counter()
  jax_out = [encode(params, ids, mask) for ids, mask in data]
  jax.block_until_ready(jax_out)
  jax_seconds = time.perf_counter() - start

  start = time.perf_counter()
  with torch.no_grad():
    torch_out = [torch_model(input_ids=torch.from_numpy(ids.astype(np.int64)),
                             attention_mask=torch.from_numpy(mask.astype(np.int64))
                             ).last_hidden_state for ids, mask in data]
  torch_seconds = time.perf_counter() - start

  diff = max(float(np.abs(np.asarray(j)[m] - t.numpy()[m]).max())
             for j, t, (_, m) in zip(jax_out, torch_out, data))
  print(f"JAX compile ({len({ids.shape for ids, _ in data})} shapes): {compile_seconds:.1f} s")
  print(f"JAX encode:     {jax_seconds:.2f} s ({len(sentences) / jax_seconds:.0f} sentences/s)")
  print(f"PyTorch encode: {torch_seconds:.2f} s ({len(sentences) / torch_seconds:.0f} "
        "sentences/s)")
  print(f"PyTorch / JAX time: {torch_seconds / jax_seconds:.2f}x; "
        f"max |JAX - PyTorch| on real tokens: {diff:.2e}")


def bench_model(config) -> None:
  """The train step of `config` in JAX and, where the model has one, its PyTorch twin
  (`vmr_jax.tools.twins`), on a random batch; evaluation queries/s."""
  prepared = model_bench.prepare(config, _FEATURE_DIM.value, _VOCAB.value)
  torch_step = model_bench.torch_step(prepared)  # before training updates the weights
  step = model_bench.compile_train_step(prepared, config.model)
  jax_seconds, _ = model_bench.time_train_step(step, prepared, _STEPS.value)
  variables = step.state.variables
  evaluations = []  # (label, queries/s): the config as given, or each variant
  if _EVAL_VARIANTS.value:
    field, values = _EVAL_VARIANTS.value.split("=", 1)
    *parents, name = field.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    for value in values.split(","):
      node[name] = type(node[name])(value)
      evaluations.append((f"JAX eval, {field}={value}",
                          model_bench.eval_queries_per_second(prepared, variables,
                                                              _STEPS.value)))
  else:
    evaluations.append(("JAX eval", model_bench.eval_queries_per_second(
        prepared, variables, _STEPS.value)))

  devices = jax.devices()
  print(f"{config.model}: batch {costs.describe_batch(config)}, {config.data.num_clips} "
        f"clips x {_FEATURE_DIM.value}; JAX on {len(devices)} x {devices[0].device_kind}"
        + (f", {torch_step[1]}" if torch_step else ""))
  print(f"JAX compile:                 {step.compile_seconds:8.2f} s")
  print(f"JAX train step:              {1000 * jax_seconds:8.2f} ms")
  if torch_step:
    torch_seconds, _ = model_bench.timed(torch_step[0], _STEPS.value, warmup=2)
    print(f"PyTorch train step (eager):  {1000 * torch_seconds:8.2f} ms")
    print(f"PyTorch / JAX step time:     {torch_seconds / jax_seconds:8.2f}x")
  else:
    print(f"no PyTorch twin of {config.model}")
  for label, speed in evaluations:
    print(f"{label}: {speed:.0f} queries/s")


def bench_memory(config=None) -> None:
  """The paper configs (or the `--memory_configs` names, or `config` alone)."""
  if config is not None:
    path = config_flags.get_config_filename(flags.FLAGS["config"])
    configs = [(os.path.basename(path).split(".py")[0], config)]
  else:
    configs = [(name, costs.load(name))
               for name in _MEMORY_CONFIGS.value or costs.paper_configs()]
  device = jax.devices()[0]
  print(f"{len(configs)} configs x {len(_MEMORY_DTYPES.value)} dtypes, compiled for one "
        f"{device.platform} device ({device.device_kind})", flush=True)
  rows = []
  for name, config in configs:
    for dtype in _MEMORY_DTYPES.value:
      row = costs.step_costs(name, config, dtype)
      print(f"{name} {dtype}: {row.parameters / 1e6:.1f}M parameters, "
            f"{row.dot_flops / 1e9:,.0f} dot GFLOPs, peak "
            f"{row.peak_bytes / costs.GIB:.2f} GiB (compiled in {row.compile_seconds:.0f} s)",
            flush=True)
      rows.append(row)
  print(f"\nStep times at {_PEAK_FRACTION.value:.0%} of peak:\n")
  print(costs.table(rows, _PEAK_FRACTION.value))


def bench_retrieval(config) -> None:
  import torch
  from vmr_jax.layers import moment_map
  from vmr_jax.models import fvmr
  videos, total = (int(v) for v in _GALLERY.value)
  per_video = np.full(videos, total // videos)
  per_video[:total % videos] += 1
  length = fvmr.map_clips(config)
  spans = moment_map.sparse_spans(length, config.fvmr.scale_layers)
  cells, dim = len(spans), config.fvmr.dim
  k = config.eval.top_k if 0 < config.eval.top_k < cells else cells  # 0: every cell
  rng = np.random.default_rng(0)
  gallery = rng.normal(size=(videos, cells, dim)).astype(np.float32)  # phi_m(m_i)
  queries = rng.normal(size=(videos, per_video.max(), dim)).astype(np.float32)  # phi_s(s)
  duration = rng.uniform(30, 300, videos).astype(np.float32)
  batch = {"duration": duration, "video_mask": np.ones((videos, config.data.num_clips), bool)}

  @jax.jit
  def jax_step(gallery, queries, batch):
    scores = jnp.einsum("vmd,vqd->vqm", gallery, queries)
    return fvmr.decode({"p_logits": scores}, batch, config)

  units = spans.astype(np.float32) + np.array([0, 1], np.float32)
  torch_times = torch.from_numpy(units)[None] * torch.from_numpy(
      duration / length)[:, None, None]  # [V, M, 2]

  def torch_step(gallery, queries):
    with torch.no_grad():
      best, index = torch.topk(torch.sigmoid(torch.einsum("vmd,vqd->vqm", gallery, queries)),
                               k, dim=-1)
      picked = torch.gather(torch_times[:, None].expand(-1, queries.shape[1], -1, -1), 2,
                            index[..., None].expand(-1, -1, -1, 2))
      return torch.cat([picked, best[..., None]], dim=-1)

  device_args = jax.device_put((gallery, queries, batch))
  torch_args = torch.from_numpy(gallery), torch.from_numpy(queries)
  timings = {name: model_bench.timed(run, _STEPS.value)[0]
             for name, run in (("JAX", lambda: jax.block_until_ready(jax_step(*device_args))),
                               ("PyTorch", lambda: torch_step(*torch_args)))}
  print(f"fvmr retrieval (CML: Eq. 6 scores + top-{k} moments): {videos} videos, {total} "
        f"queries, {cells} cells x {dim}; JAX on {jax.devices()[0].device_kind}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), {_STEPS.value} passes")
  for name, seconds in timings.items():
    print(f"{name:8s} {1000 * seconds:8.2f} ms per pass, {1000 * seconds / total:.4f} "
          f"ms/query, {total / seconds:,.0f} queries/s")
  print(f"PyTorch / JAX time: {timings['PyTorch'] / timings['JAX']:.2f}x")


def bench_corpus() -> None:
  """Prints `corpus_speed.corpus_comparison`'s tables (`corpus_speed.markdown`)."""
  moments, bits, dim = _MOMENTS.value, _CODE_BITS.value, _CORPUS_DIM.value
  queries, k = _CORPUS_QUERIES.value, _CORPUS_K.value
  if _CORPUS_PARTS.value:
    seconds = corpus_speed.parts(moments, _PER_VIDEO.value, bits, dim, queries, k, _STEPS.value)
    print(f"JAX's collection search, part by part: {moments:,} moments, {queries} sentences, "
          f"top {k}, 1 x {jax.devices()[0].device_kind}\n| part | ms |\n| --- | --- |")
    print("\n".join(f"| {name} | {1000 * s:.1f} |" for name, s in seconds.items()))
    return
  results = corpus_speed.corpus_comparison(moments, _PER_VIDEO.value, bits, dim, queries, k,
                                           _STEPS.value)
  print(f"collection search: {moments:,} moments ({_PER_VIDEO.value} a video), {queries} "
        f"sentences a batch, top {k}; JAX on {jax.device_count()} x "
        f"{jax.devices()[0].device_kind}, {_STEPS.value} batches")
  print(corpus_speed.markdown(results, corpus_speed.machine_limits(), moments, bits, dim,
                              queries))
  if "faiss" not in results["cmhn"]:
    print("faiss: not installed (pip install faiss-cpu)")


def bench_suite() -> None:
  """`--suite=device` (`vmr_jax.tools.device_suite`)."""
  if not _OUT.value:
    raise app.UsageError("--suite=device needs --out=DIR")
  unknown = set(_SUITE_DTYPES.value) - set(device_suite.DTYPES)
  if unknown:
    raise app.UsageError(f"--suite_dtypes: {sorted(unknown)}; one of {device_suite.DTYPES}")
  search = (device_suite.TINY_SEARCH if _SUITE_SIZE.value == "tiny" else
            {"moments": _MOMENTS.value, "per_video": _PER_VIDEO.value, "bits": _CODE_BITS.value,
             "dim": _CORPUS_DIM.value, "queries": _CORPUS_QUERIES.value, "k": _CORPUS_K.value})
  device_suite.run_suite(_OUT.value, _SUITE_CONFIGS.value or costs.paper_configs(),
                         _SUITE_DTYPES.value, _SUITE_SIZE.value, _SUITE_STEPS.value,
                         _SUITE_BUDGET.value, _SUITE_TWIN_ON_CPU.value, search)


def main(argv):
  del argv
  if _SUITE.value:
    bench_suite()
  elif _MEMORY.value:
    bench_memory(_CONFIG.value)
  elif _TASK.value == "corpus":
    bench_corpus()
  elif _TASK.value == "retrieval":
    if _CONFIG.value is None:
      raise app.UsageError("--task=retrieval needs --config=<fvmr config>")
    bench_retrieval(_CONFIG.value)
  elif _CONFIG.value is not None:
    bench_model(_CONFIG.value)
  elif _TASK.value == "bert":
    bench_bert()
  else:
    raise app.UsageError("give --config=<model config> or --task=bert")


if __name__ == "__main__":
  app.run(main)
