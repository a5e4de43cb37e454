"""FIAN on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once):
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe path follows it).

The synthetic corpus's 50-d GloVe-format vectors, 32 clips, widths far below the
paper's, and windows sized to its events (2 to 8 of the 32 clips) at stride 1/4 of
the window.
"""

from vmr_jax.configs import default, fian_common


# `get_config("tiny")`, `("small")`: `default.shrink`'s sizes.
SIZES = {
    "tiny": {"text.head_hidden": 4, "fian.hidden": 8, "fian.num_heads": 2, "fian.mlp_dim": 8,
             "eval.top_k": 10},
    "small": {"fian.hidden": 8, "fian.num_heads": 2, "fian.mlp_dim": 8, "text.head_hidden": 4,
              "fian.windows": (2, 3, 4, 6), "data.num_clips": 16, "data.max_words": 7},
}


def get_config(arg: str = ""):
  size, _ = default.parse_arg(arg)
  config = fian_common.get_config()
  default.use_synthetic(config)
  config.text.head_hidden = 32
  config.fian.hidden = 64
  config.fian.num_heads = 4
  config.fian.mlp_dim = 64
  config.fian.dropout = 0.0
  config.fian.windows = (2, 3, 4, 6, 8)
  config.fian.stride_ratio = 0.25
  config.train.batch_size = 32
  config.eval.batch_size = 32
  default.shrink(config, size, "", SIZES)
  return config
