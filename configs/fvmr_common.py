"""FVMR settings shared by its dataset configs (paper 002, Sec. 4.1 "Implementation
details").

From the paper: map convolutions of kernels 5 and 3 with BatchNorm and Tanh; GloVe
300-d words, a 2-layer BiLSTM, queries cut to 20 words; at most 4 verbs and 6 nouns
per tree; phi_m, phi_s, phi_u with one hidden layer and 512-d output; phi_fuse with a
kernel-3 convolution and a kernel-9 gated convolution; D_v = D_s = D_f = D = 512;
lambda 3, T 1, no distillation in the first 8 epochs; IoU targets scaled between
0.3 and 0.7; Adam, lr 2e-4, batch 32.

Chosen here: 256 hidden units per BiLSTM direction (so D_s = 2 x 256 = 512 as the
paper's widths say; "512 hidden units" then counts both directions) and likewise
256 per direction of the node BiGRU (D_f = 512); the MLPs' hidden width 512; the
fused map's hidden width 512; BatchNorm momentum 0.9 (PyTorch's default 0.1); a
batch of 32 (video, query) pairs as 8 videos x 4 queries (the map is encoded once
per video).
"""

import ml_collections

from vmr_jax.configs import default

FRAME_LAYERS = ("paper", "2dtan")


def get_config(frame_layer: str = "paper"):
  """`frame_layer`: "paper" or "2dtan" (2D-TAN's released frame layer,
  `vmr_jax.models.fvmr`); the dataset configs size the map with `set_map_clips`."""
  config = default.get_config()
  config.model = "fvmr"
  config.data.batch_kind = "video"
  config.data.short_videos = "stretch"  # 2D-TAN: every video resampled to L clips
  config.data.max_words = 20
  config.data.max_verbs = 4
  config.data.max_nouns = 6
  config.data.max_queries = 4
  config.text.encoder = "glove"
  config.text.glove_file = ""  # set to e.g. /data/glove.840B.300d.txt
  config.text.glove_dim = 300
  config.text.head = "bilstm"
  config.text.head_layers = 2
  config.text.head_hidden = 256
  config.fvmr = ml_collections.ConfigDict({
      "frame_layer": frame_layer,  # paper: FC + ReLU | 2dtan: L2 norm, FC + ReLU, avg pool
      "frame_pool": 2,  # 2D-TAN's pool: 256 input clips -> a 128-clip map on TACoS
      "video_dim": 512,  # D_v: the clip FC and the map convolutions
      "scale_layers": (16, 8, 8, 8),  # 2D-TAN's pooling schedule (dataset configs)
      "map_kernels": (5, 3),
      "bn_momentum": 0.9,
      "node_hidden": 256,  # per direction of the node BiGRU: D_f = 512
      "dim": 512,  # D: the common space
      "mlp_hidden": 512,  # hidden width of phi_m, phi_s, phi_u
      "fuse_hidden": 512,  # phi_fuse's convolution width
      "fuse_kernels": (3, 9),  # (convolution, gated convolution)
      "iou_low": 0.3,  # BCE targets clip((IoU - low) / (high - low), 0, 1)
      "iou_high": 0.7,
      "distill_weight": 3.0,  # lambda (Eq. 10); 0 = the ablation without distillation
      "temperature": 1.0,  # T (Eq. 9)
      "distill_loss": "softmax_bce",  # Eq. 9's reading: vmr_jax.layers.losses.distillation
      "distill_warmup_epochs": 8,
  })
  config.train.batch_size = 8
  config.train.optimizer = "adam"
  config.train.learning_rate = 2e-4
  config.eval.batch_size = 4
  config.eval.nms_threshold = 0.5
  config.eval.tie_order = "2dtan"  # 2D-TAN's map ranking (vmr_jax.metrics.map_order)
  return config


def set_map_clips(config, clips: int) -> None:
  """A `clips`-clip 2D map: `data.num_clips` = `clips`, or `frame_pool` times that with
  the "2dtan" frame layer (2D-TAN's NUM_SAMPLE_CLIPS = 2 x its map size)."""
  pool = config.fvmr.frame_pool if config.fvmr.frame_layer == "2dtan" else 1
  config.data.num_clips = clips * pool
