"""FIAN on ActivityNet Captions (paper 004: C3D features, 200 clips, windows 16, 32,
64, 96, 128, 160, 192 at stride 1/4 of the window, alpha 0.001, 8 heads, Adam lr
8e-4, batch 128). As for TACoS (`configs/fian_tacos.py`), pass
`--config.text.glove_file`.
"""

from vmr_jax.configs import fian_common


def get_config():
  config = fian_common.get_config()
  config.data.name = "activitynet_captions"
  config.data.num_clips = 200
  config.fian.windows = (16, 32, 64, 96, 128, 160, 192)
  config.fian.stride_ratio = 0.25
  config.fian.alpha = 0.001
  config.eval.iou_thresholds = (0.3, 0.5, 0.7)  # the paper's Table 1 columns
  config.train.learning_rate = 8e-4
  config.train.batch_size = 128
  config.train.num_steps = 30000
  config.train.eval_every = 2000
  config.train.checkpoint_every = 2000
  return config
