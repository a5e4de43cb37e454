"""CLEAR settings shared by its dataset configs (paper 000, Sec. III and IV-A3).

Not given in the paper, chosen here: the Bi-TCN and moment-MLP width (`hidden`), the
fine MLP's hidden width, d = 256 (the scale of the authors' coarse loss), dropout 0,
and the map size L per dataset (2D-TAN's 128 TACoS / 64 ActivityNet clips, which the
authors' code uses). mu and rho are the authors' code's thresholds.
"""

import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.model = "clear"
  config.data.batch_kind = "video"
  config.data.short_videos = "stretch"  # Eq. 2: L units over the whole video
  config.text.encoder = "bert"
  config.text.trainable = True
  config.text.pooling = "cls"
  config.clear = ml_collections.ConfigDict({
      "hidden": 512,  # Bi-TCN and moment-MLP hidden width
      "tcn_layers": 3,  # dilations 1, 2, 4
      "tcn_kernel": 3,  # Fig. 3
      "dim": 256,  # d: moment and query representations
      "fine_hidden": 256,  # hidden width of the confidence MLP
      "tree_layers": 4,  # P (R = 2P - 1 anchors)
      "search": "pruned",  # pruned (Algorithm 1) | exhaustive
      "search_chunk": 8,  # queries per iteration of the pruned search's full-map loop
      "mu": 0.015,  # Algorithm 1 thresholds, mu < rho
      "rho": 0.02,
      "alpha": 1.0,  # Eq. 9
      "loss_reduction": "mean",  # mean: per pair | sum: Eq. 5 and Eq. 7 as printed
      "iou_low": 0.0,  # BCE targets clip((IoU - low) / (high - low), 0, 1);
      "iou_high": 1.0,  # (0, 1): the paper's raw IoU
      "dropout": 0.0,
  })
  config.train.optimizer = "adam"
  config.eval.iou_thresholds = (0.3, 0.5, 0.7)  # the paper's Table I/II columns
  config.eval.tie_order = "2dtan"  # 2D-TAN's map ranking (vmr_jax.metrics.map_order)
  return config
