"""FIAN settings shared by its dataset configs (paper 004, Sec. 4.3 "Implementation
details").

From the paper: GloVe words and a BiGRU for the query; C3D (TACoS, ActivityNet
Captions) or I3D (Charades-STA) clips, an FC to 512, self-attention and a BiGRU for
the video; 8 attention heads (4 on Charades-STA); positives above IoU tau = 0.55;
Adam. Per dataset (their configs): clips n_v, windows, stride ratio, alpha, lr and
batch size.

Chosen here (the paper is silent): GloVe 300-d (as the papers FIAN compares with),
queries cut to 20 words (n_q of Eq. 11), 256 units per GRU direction so that every
representation is d_h = 512 wide, a feed-forward width of 512, dropout 0.1.
"""

import ml_collections

from vmr_jax.configs import default


def get_config():
  config = default.get_config()
  config.model = "fian"
  config.data.batch_kind = "query"  # one (video, query) pair per example
  config.data.short_videos = "stretch"  # every video resampled to n_v clips
  config.data.max_words = 20
  config.text.encoder = "glove"
  config.text.glove_file = ""  # set to e.g. /data/glove.840B.300d.txt
  config.text.glove_dim = 300
  config.text.head = "bigru"
  config.text.head_layers = 1
  config.text.head_hidden = 256
  config.fian = ml_collections.ConfigDict({
      "hidden": 512,  # d_h
      "num_heads": 8,
      "mlp_dim": 512,  # the cross-modal encoders' feed-forward width
      "dropout": 0.1,
      "windows": (8, 16, 32, 64),  # window sizes in clips (kernels of Sec. 3.4)
      "stride_ratio": 0.125,  # stride = round(window * ratio)
      "positive_iou": 0.55,  # tau
      "alpha": 0.005,  # weight of the boundary loss (Eq. 18)
  })
  config.train.optimizer = "adam"
  config.train.learning_rate = 4e-4
  config.train.batch_size = 64
  config.eval.batch_size = 64
  return config
