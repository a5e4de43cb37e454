"""FIAN on QVHighlights: its ActivityNet Captions config (`configs/fian_activitynet.py`)
with QVHighlights' data (`configs/default.py: use_qvhighlights`).

  python -m data_pipelines.build qvhighlights --manual_dir=QVHIGHLIGHTS \
      --data_dir=~/tensorflow_datasets
  python -m vmr_jax.main --config=configs/fian_qvhighlights.py --workdir=W
"""

from vmr_jax.configs import default, fian_activitynet


def get_config():
  config = fian_activitynet.get_config()
  default.use_qvhighlights(config)
  return config
