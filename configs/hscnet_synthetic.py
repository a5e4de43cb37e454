"""HSCNet on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once):
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe path follows it).

A synthetic video's sentences (at most 5) form one paragraph. Smaller widths than the
paper's (D = 64, 2 video/text layers) so that it trains in minutes on a CPU.
"""

from vmr_jax.configs import default, hscnet_common


# `get_config("tiny")`, `("small")`: `default.shrink`'s sizes (tiny: the tiny videos'
# paragraphs are cut in two).
SIZES = {
    "tiny": {"hscnet.max_sentences": 3, "hscnet.hidden": 16, "hscnet.num_heads": 2,
             "hscnet.mlp_dim": 16, "hscnet.video_layers": 1, "hscnet.text_layers": 1},
    "small": {"hscnet.hidden": 16, "hscnet.num_heads": 2, "hscnet.mlp_dim": 12,
              "hscnet.video_layers": 1, "hscnet.text_layers": 1, "hscnet.dropout": 0.0,
              "hscnet.max_sentences": 4, "data.max_words": 7, "data.num_clips": 16},
}


def get_config(arg: str = ""):
  size, _ = default.parse_arg(arg)
  config = hscnet_common.get_config()
  default.use_synthetic(config)
  config.data.max_words = 12
  config.hscnet.max_sentences = 5
  config.hscnet.hidden = 64
  config.hscnet.num_heads = 4
  config.hscnet.mlp_dim = 128
  config.hscnet.video_layers = 2
  config.hscnet.text_layers = 2
  default.shrink(config, size, "", SIZES)
  return config
