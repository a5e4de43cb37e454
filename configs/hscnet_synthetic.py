"""HSCNet on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once):
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe path follows it).

A synthetic video's sentences (at most 5) form one paragraph. Smaller widths than the
paper's (D = 64, 2 video/text layers) so that it trains in minutes on a CPU.
"""

from vmr_jax.configs import default, hscnet_common


def get_config():
  config = hscnet_common.get_config()
  default.use_synthetic(config)
  config.data.max_words = 12
  config.hscnet.max_sentences = 5
  config.hscnet.hidden = 64
  config.hscnet.num_heads = 4
  config.hscnet.mlp_dim = 128
  config.hscnet.video_layers = 2
  config.hscnet.text_layers = 2
  return config
