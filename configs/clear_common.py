"""CLEAR settings shared by its dataset configs (paper 000, Sec. III and IV-A3).

Not given in the paper, chosen here: the Bi-TCN and moment-MLP width (`hidden`), the
fine MLP's hidden width, d = 256 (the scale of the authors' coarse loss), dropout 0,
and the map size L per dataset (2D-TAN's 128 TACoS / 64 ActivityNet clips, which the
authors' code uses). mu and rho are the authors' code's thresholds.
"""

import ml_collections

from vmr_jax.configs import default

# The reading that made the paper's tables (github.com/Huyp777/CSUN) is the default;
# `configs/clear_<dataset>.py:paper` trains the paper's text (docs/results.md compares
# the two).
DEFAULT_READING = "released"


def get_config(reading: str = DEFAULT_READING):
  """`reading`: "released" (the authors' code, `vmr_jax.models.clear_released`,
  TACoS's sizes) or "paper" (the paper's text, `vmr_jax.models.clear`); a dataset
  config may then change the sizes."""
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
  if reading == "released":
    released(config)
  elif reading != "paper":
    raise ValueError(f"CLEAR's reading is paper or released, got {reading!r}")
  config.train.optimizer = "adam"
  config.eval.iou_thresholds = (0.3, 0.5, 0.7)  # the paper's Table I/II columns
  config.eval.tie_order = "2dtan"  # 2D-TAN's map ranking (vmr_jax.metrics.map_order)
  return config


def released(config):
  """The authors' code's settings (CSUN_T, TACoS): one (video, sentence) pair per
  example, frozen GloVe words under the model's own LSTMs, 256 clips."""
  config.data.batch_kind = "query"
  config.data.num_clips = 256  # num_pre_clips; the fine map pools them to 128
  config.text.encoder = "glove"
  config.text.head = ""
  config.text.trainable = False  # torch.nn.Embedding.from_pretrained
  config.clear = ml_collections.ConfigDict({
      "reading": "released",
      # fine: fineGraind/pool.py, getmap.py, encode.py, predictor.py, fineloss.py
      "frame_dim": 512,  # fp's 1x1 convolution, the query FC and the map's 1x1 conv
      "frame_pool": 2,  # fp's average pool (kernel = stride)
      "scale_layers": (16, 8, 8, 8),  # 2D-TAN's pooling counts, the diagonal included
      "query_hidden": 512,
      "query_layers": 3,
      "predictor_hidden": 512,
      "predictor_kernel": 5,
      "predictor_layers": 8,
      "iou_low": 0.5,  # fineloss: min_iou, max_iou
      "iou_high": 1.0,
      # coarse: coarse/video.py, sentence.py, coarseModule.py
      "tcn_channels": (2048, 1024, 512, 256),
      "tcn_kernel": 3,
      "dropout": 0.3,
      "coarse_kernels": (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 19, 23),
      "coarse_strides": (1,) * 13 + (2,),
      "coarse_dim": 128,  # LEN_FEATURE_B
      "sentence_hidden": 1024,
      "sentence_layers": 3,
      "sentence_fc": 256,
      "coarse_scale": 256.0,  # batches.sim * 256
      # utils/inference.py: e = (c[-1] - c[31]) / c[31]; mu <= e <= alpha (here rho)
      "rule_anchor": 31,
      "mu": 0.015,
      "rho": 0.02,
  })
  config.train.batch_size = 32
  config.train.learning_rate = 1.3e-3
  config.train.schedule = "multistep"  # MultiStepLR, gamma 0.1
  config.eval.batch_size = 32
  config.eval.nms_threshold = 0.5
