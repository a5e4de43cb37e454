"""FIAN on Charades-STA (paper 004: I3D features, 64 clips, windows 16, 24, 32, 40 at
stride 1/8 of the window, alpha 0.005, 4 heads, Adam lr 4e-4, batch 64).

Charades-STA has no validation split: the test split picks the best checkpoint, as
the papers' tables do.

  python -m data_pipelines.build charades_sta --config=i3d --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/fian_charades.py --workdir=W \
      --config.data.data_dir=OUT --config.text.glove_file=/data/glove.840B.300d.txt
"""

from vmr_jax.configs import fian_common


def get_config():
  config = fian_common.get_config()
  config.data.name = "charades_sta"
  config.data.builder_config = "i3d"
  config.data.num_clips = 64
  config.fian.num_heads = 4
  config.fian.windows = (16, 24, 32, 40)
  config.fian.stride_ratio = 0.125
  config.fian.alpha = 0.005
  config.eval.val_split = "test"
  config.eval.iou_thresholds = (0.5, 0.7)  # the paper's Table 3 columns
  config.train.num_steps = 10000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
