"""HSCNet on QVHighlights: its ActivityNet Captions config (`configs/hscnet_activitynet.py`)
with QVHighlights' data (`configs/default.py: use_qvhighlights`).

  python -m data_pipelines.build qvhighlights --manual_dir=QVHIGHLIGHTS \
      --data_dir=~/tensorflow_datasets
  python -m vmr_jax.main --config=configs/hscnet_qvhighlights.py --workdir=W
"""

from vmr_jax.configs import default, hscnet_activitynet


def get_config():
  config = hscnet_activitynet.get_config()
  default.use_qvhighlights(config)
  config.data.num_clips = 64  # 75 two-second clips, resampled to the map of the others
  config.hscnet.max_sentences = 2  # 98% of the videos have one query, the rest two
  return config
