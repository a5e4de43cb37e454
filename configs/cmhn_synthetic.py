"""CMHN on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once):
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe path follows it).

The paper's BERT is replaced by the synthetic corpus's GloVe-format vectors with a
BiGRU head (a BERT-base forward pass alone would take minutes per epoch on a CPU);
`--config.text.encoder=bert --config.text.bert_dir=...` runs the paper's encoder.
Smaller widths and code length than the paper's for the same reason.
The authors' code's reading (the default); `--config=configs/cmhn_synthetic.py:paper`
trains the paper's.
"""

from vmr_jax.configs import cmhn_common, default


READINGS = (cmhn_common.DEFAULT_READING, "paper")
# `get_config("tiny")`, `("small")`, `("tiny,paper")`: `default.shrink`'s sizes.
SIZES = {
    "tiny": {"data.max_queries": 4, "data.eval_max_queries": 0, "text.head_hidden": 8,
             "cmhn.hidden": 16, "cmhn.code_bits": 8, "cmhn.kernels": (1, 2, 3, 4, 6),
             "cmhn.strides": (1, 1, 1, 2, 2), "cmhn.tcn_channels": (16, 16),
             "cmhn.query_hidden": (16, 8), "eval.top_k": 10},
    "small": {"cmhn.hidden": 16, "cmhn.code_bits": 8, "cmhn.kernels": (1, 2, 3, 5, 8),
              "cmhn.strides": (1, 1, 2, 2, 3), "cmhn.tcn_channels": (12, 16),
              "cmhn.query_hidden": (10, 8), "text.head_hidden": 6, "data.num_clips": 16},
}


def get_config(arg: str = ""):
  size, reading = default.parse_arg(arg, READINGS)
  config = cmhn_common.get_config(reading)
  default.use_synthetic(config)
  config.data.max_queries = 8
  config.data.eval_max_queries = 8  # the synthetic videos have at most 5 sentences
  config.text.trainable = True
  config.text.head = "bigru"
  config.text.head_hidden = 64
  config.cmhn.hidden = 64
  config.cmhn.code_bits = 32
  config.cmhn.kernels = tuple(range(1, 13))  # every size up to 12 of the 32 clips
  config.cmhn.strides = (1,) * 12
  config.cmhn.tcn_channels = (128, 64)  # the released reading's, shrunk like `hidden`
  config.cmhn.query_hidden = (64, 64)
  default.shrink(config, size, reading, SIZES)
  return config
