"""HSCNet on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once):
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe path follows it).

A synthetic video's sentences (at most 5) form one paragraph. Smaller widths than the
paper's (D = 64, 2 video/text layers) so that it trains in minutes on a CPU.
"""

from configs import default, hscnet_common


def get_config():
  config = hscnet_common.get_config()
  default.use_synthetic(config)
  config.data.num_clips = 32
  config.data.max_words = 12
  config.hscnet.max_sentences = 5
  config.hscnet.hidden = 64
  config.hscnet.num_heads = 4
  config.hscnet.mlp_dim = 128
  config.hscnet.video_layers = 2
  config.hscnet.text_layers = 2
  config.train.batch_size = 16
  config.train.num_steps = 1500
  config.train.learning_rate = 1e-3
  config.train.eval_every = 500
  config.train.checkpoint_every = 250
  config.eval.iou_thresholds = (0.1, 0.3, 0.5, 0.7)
  return config
