"""FIAN on TACoS (paper 004: C3D features, 200 clips, windows 8, 16, 32, 64 at
stride 1/8 of the window, alpha 0.005, 8 heads, Adam lr 4e-4, batch 64).

  python -m data_pipelines.build tacos --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/fian_tacos.py --workdir=W \
      --config.data.data_dir=OUT --config.text.glove_file=/data/glove.840B.300d.txt
"""

from vmr_jax.configs import fian_common


def get_config():
  config = fian_common.get_config()
  config.data.name = "tacos"
  config.data.num_clips = 200
  config.fian.windows = (8, 16, 32, 64)
  config.fian.stride_ratio = 0.125
  config.fian.alpha = 0.005
  config.eval.iou_thresholds = (0.1, 0.3, 0.5)  # the paper's Table 2 columns
  config.train.num_steps = 20000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
