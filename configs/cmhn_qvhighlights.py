"""CMHN on QVHighlights: its ActivityNet Captions config (`configs/cmhn_activitynet.py`)
with QVHighlights' data (`configs/default.py: use_qvhighlights`).

  python -m data_pipelines.build qvhighlights --manual_dir=QVHIGHLIGHTS \
      --data_dir=~/tensorflow_datasets
  python -m vmr_jax.main --config=configs/cmhn_qvhighlights.py --workdir=W
"""

from vmr_jax.configs import cmhn_common, default, cmhn_activitynet


def get_config(reading: str = cmhn_common.DEFAULT_READING):
  # Its videos all last ~150 s, its features come a clip every 2 s: the ActivityNet
  # config's fixed count in either reading.
  config = cmhn_activitynet.get_config(f"{reading},fixed")
  default.use_qvhighlights(config)
  return config
