"""CLEAR on QVHighlights: its ActivityNet Captions config (`configs/clear_activitynet.py`)
with QVHighlights' data (`configs/default.py: use_qvhighlights`).

  python -m data_pipelines.build qvhighlights --manual_dir=QVHIGHLIGHTS \
      --data_dir=~/tensorflow_datasets
  python -m vmr_jax.main --config=configs/clear_qvhighlights.py --workdir=W
"""

from vmr_jax.configs import clear_common, default, clear_activitynet


def get_config(reading: str = clear_common.DEFAULT_READING):
  config = clear_activitynet.get_config(reading)
  default.use_qvhighlights(config)
  return config
