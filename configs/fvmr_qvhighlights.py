"""FVMR on QVHighlights: its ActivityNet Captions config (`configs/fvmr_activitynet.py`)
with QVHighlights' data (`configs/default.py: use_qvhighlights`).

  python -m data_pipelines.build qvhighlights --manual_dir=QVHIGHLIGHTS \
      --data_dir=~/tensorflow_datasets
  python -m vmr_jax.main --config=configs/fvmr_qvhighlights.py --workdir=W
"""

from vmr_jax.configs import default, fvmr_activitynet


def get_config(frame_layer: str = "paper"):
  config = fvmr_activitynet.get_config(frame_layer)
  default.use_qvhighlights(config)
  return config
