"""FVMR on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once); it writes the corpus's SRL file too:
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe and SRL paths follow it).
Without distillation (the paper's "w/o SD" ablation): configs/fvmr_synthetic_no_distill.py.
A synthetic build made before the corpus had its SRL file: add `--overwrite` once.

The synthetic corpus's 50-d GloVe-format vectors, widths far below the paper's and
2D-TAN's Charades-STA map (16 clips, schedule (16,): all 136 spans), so that it
trains in a few minutes on a CPU: the teacher convolves one map per (video, query)
pair. The synthetic videos have at most 5 sentences, so a video is one example.
"""

from vmr_jax.configs import default, fvmr_common


# `get_config("tiny")`, `("small")`: `default.shrink`'s sizes (tiny: the distillation
# warm-up ends after 2 of the 12 steps' ~6 epochs); a frame layer: `("tiny,2dtan")`.
SIZES = {
    "tiny": {"data.max_queries": 4, "data.eval_max_queries": 0, "text.head_hidden": 8,
             "fvmr.video_dim": 8, "fvmr.dim": 8, "fvmr.mlp_hidden": 8, "fvmr.node_hidden": 4,
             "fvmr.fuse_hidden": 4, "fvmr.distill_warmup_epochs": 2, "eval.top_k": 10},
    "small": {"fvmr.video_dim": 8, "fvmr.dim": 8, "fvmr.mlp_hidden": 8, "fvmr.fuse_hidden": 4,
              "fvmr.node_hidden": 4, "text.head_hidden": 5, "text.head_layers": 2,
              "data.num_clips": 32, "fvmr.scale_layers": (16, 8), "data.max_queries": 3},
}


def get_config(arg: str = ""):
  size, frame_layer = default.parse_arg(arg, fvmr_common.FRAME_LAYERS)
  config = fvmr_common.get_config(frame_layer)
  default.use_synthetic(config)
  config.data.srl_file = (
      config.data.get_ref("data_dir") + "/downloads/synthetic_release/default/srl.jsonl")
  fvmr_common.set_map_clips(config, 16)
  config.data.max_queries = 5
  config.data.eval_max_queries = 5
  config.text.head_layers = 1
  config.text.head_hidden = 32
  config.fvmr.scale_layers = (16,)
  config.fvmr.video_dim = 32
  config.fvmr.node_hidden = 32
  config.fvmr.dim = 32
  config.fvmr.mlp_hidden = 32
  config.fvmr.fuse_hidden = 16
  config.eval.batch_size = 16
  default.shrink(config, size, frame_layer, SIZES)
  return config
