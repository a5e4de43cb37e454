"""CMHN settings shared by its dataset configs (paper 001, Sec. IV-A3)."""

import ml_collections

from vmr_jax.configs import default

# The reading that made the paper's tables (github.com/Huyp777/CMHN) is the default;
# `configs/cmhn_<dataset>.py:paper` trains the paper's text (docs/results.md compares
# the two).
DEFAULT_READING = "released"
# The clips a dataset config reads: "fixed", the dataset's `data.num_clips` per video
# (resampled), or "seconds", the released code's 1 clip per second, as many as the
# video lasts (padded and masked), with its candidate sizes in seconds.
CLIP_RULES = ("fixed", "seconds")


def parse_arg(arg: str, released_clips: str) -> tuple[str, str]:
  """A dataset config's argument "READING", "CLIPS" or "READING,CLIPS"
  (`--config=configs/cmhn_tacos.py:released,seconds`) -> (reading, clips): READING
  "released" (the default) or "paper", CLIPS one of `CLIP_RULES` (default:
  `released_clips` for the released reading, "fixed" for the paper's)."""
  reading, clips = DEFAULT_READING, ""
  for token in filter(None, arg.split(",")):
    if token in ("released", "paper"):
      reading = token
    elif token in CLIP_RULES:
      clips = token
    else:
      raise ValueError(f"config argument {token!r}: a reading (released, paper) or "
                       f"clips ({', '.join(CLIP_RULES)})")
  return reading, clips or (released_clips if reading == "released" else "fixed")


def read_seconds(config: ml_collections.ConfigDict, longest: int, kernels, strides):
  """The released code's clips: 1 per second, padded to the `longest` video's
  seconds, candidate `kernels` and `strides` in seconds."""
  config.data.update(clip_seconds=1.0, num_clips=longest)
  config.cmhn.update(kernels=tuple(kernels), strides=tuple(strides))


def get_config(reading: str = DEFAULT_READING):
  """`reading`: "released" (the authors' code) or "paper" (the paper's text), both
  described in `vmr_jax.models.cmhn`; a dataset config may then change the sizes."""
  config = default.get_config()
  config.model = "cmhn"
  config.data.batch_kind = "video"
  config.text.encoder = "bert"
  config.text.trainable = True  # the paper fine-tunes BERT
  config.text.pooling = "cls"
  config.cmhn = ml_collections.ConfigDict({
      "hidden": 256,  # Bi-TCN, candidate and MLP width (not in the paper; the authors' code)
      "tcn_layers": 3,  # dilations 1, 2, 4 (Fig. 3)
      "tcn_kernel": 3,
      "causal": False,  # neither the paper's Bi-TCN nor the released TCN is causal
      # Candidate convolutions (Eq. 2): window sizes and strides in clips. The paper:
      # every size 1..Delta at stride 1; a size-k convolution has k hidden^2 weights,
      # so the dataset configs take the authors' code's scheme instead (all short
      # sizes at stride 1, longer ones sparser with strides ~k/8).
      "kernels": tuple(range(1, 17)),
      "strides": (1,) * 16,
      "code_bits": 128,  # L
      "final_activation": "rrelu",  # rrelu (Eq. 3-4) | tanh | none
      "code_scale": "none",  # none (Eq. 3-4) | l2: every code scaled to norm sqrt(L)
      "similarity_codes": "continuous",  # continuous (Eq. 7) | binary (sgn, STE)
      "alpha": 1.0,
      "beta": 1.0,
      "loss_reduction": "sum",  # sum: Eq. 7-10 as printed | mean: per pair and bit
      "dropout": 0.0,
      "reading": "paper",  # paper | released (the authors' code)
      # The released reading's: residual TCN widths per level (the last one feeds the
      # candidate convolutions), the sentence MLP's hidden widths, per-clip L2 norm.
      "tcn_channels": (2048, 1024, 512, 256),
      "query_hidden": (512, 256),
      "normalize_clips": False,
  })
  if reading == "released":
    config.cmhn.update(reading="released", normalize_clips=True, dropout=0.3,
                       beta=0.0, loss_reduction="sum", similarity_codes="continuous")
    config.text.trainable = False  # a frozen, precomputed sentence vector
  elif reading != "paper":
    raise ValueError(f"CMHN's reading is paper or released, got {reading!r}")
  config.train.optimizer = "adam"
  # Sec. III-E: candidates ranked by Hamming distance, no NMS (IoU > 1 never happens).
  config.eval.nms_threshold = 1.0
  # The authors' released evaluation (utils/tools.py Evaluate.start) instead applies
  # NMS at m - 0.05 for R@n at IoU m (`eval.nms_offset`), the released reading's.
  if reading == "released":
    config.eval.nms_offset = 0.05
  return config
