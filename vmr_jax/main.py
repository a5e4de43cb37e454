"""The command line: train, evaluate or predict with any model config.

    python -m vmr_jax.main --config=configs/cmhn_synthetic.py --workdir=DIR \
        [--mode=train|eval|export|predict] [--config.<field>=value ...]

- train: trains (resuming from DIR's latest checkpoint if there is one), then
  exports the best checkpoint to DIR/export and evaluates it on the test split.
- eval: evaluates DIR's best checkpoint (`--checkpoint=latest` for the latest) on
  `--split` (default: the config's test split).
- export: writes DIR's best checkpoint (`--checkpoint=latest`) as a self-contained
  model directory (`vmr_jax.export`; `--export_dir`, default DIR/export), which
  `vmr_jax.Predictor` and `python -m vmr_jax.search` load with no dataset.
- predict: ranks moments of one video for sentences: `--video=ID` from `--split`
  (or `--features=file.npy` [clips, D] with `--duration=SECONDS`), sentences from
  `--sentences="a;b"` or `--sentences_file` (one per line).
`--config` is a file, or where no such file exists, `configs/NAME.py` of the installed
package (`vmr_jax.config_files`): the command runs from any directory.
Several processes (`vmr_jax.distributed`, docs/scaling.md): the same command on
every process with `--coordinator_address=HOST:PORT --num_processes=N
--process_id=I` (or JAX's environment variables), or `--multihost` where JAX detects
the cluster (Cloud TPU, Slurm, Open MPI, Kubernetes).
Training holds the workdir (a second run into it stops at once, `vmr_jax.workdir_lock`);
SIGTERM saves a checkpoint and exits with status 143, and the same command resumes.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from data_pipelines.data_config import (DataMismatchError, DatasetNotBuiltError,
                                         NotInDatasetError)
from vmr_jax import config_files, distributed

_CONFIG = config_files.DEFINE_config_file("config", "Model config file (a path, or "
                                          "configs/NAME.py of the installed configs).")
flags.declare_key_flag("config")  # listed by --help
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, logs, eval outputs.",
                               required=True)
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "export", "predict"],
                          "What to do.")
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "best", ["best", "latest"],
                                "eval/export/predict: which checkpoint.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "export: where (default "
                                  "WORKDIR/export).")
_SPLIT = flags.DEFINE_string("split", None, "eval/predict: split (default: test).")
_VIDEO = flags.DEFINE_string("video", None, "predict: a video id of --split.")
_FEATURES = flags.DEFINE_string("features", None, "predict: a .npy [clips, D] file.")
_DURATION = flags.DEFINE_float("duration", None, "predict: --features' duration, s.")
_SENTENCES = flags.DEFINE_string("sentences", None, "predict: sentences, ';'-separated.")
_SENTENCES_FILE = flags.DEFINE_string("sentences_file", None, "predict: one per line.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Several processes, as JAX detects "
                                "them on the cluster (Cloud TPU, Slurm, Open MPI, Kubernetes).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Several processes: "
                                   "process 0's HOST:PORT (or JAX_COORDINATOR_ADDRESS).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Several processes: how many "
                                      "(or JAX_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Several processes: this one's "
                                   "index, 0 .. num_processes - 1 (or JAX_PROCESS_ID).")
_CONNECT_TIMEOUT = flags.DEFINE_integer("connect_timeout", 300, "Several processes: "
                                        "seconds to wait for all of them to connect.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  from vmr_jax import registry  # keeps --help fast
  try:
    registry.for_config(config)  # an unknown model stops here, before any data is read
  except registry.UnknownModelError as e:
    raise app.UsageError(str(e)) from None
  try:
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                           detect=_MULTIHOST.value, timeout_s=_CONNECT_TIMEOUT.value)
  except distributed.DistributedError as e:
    raise app.UsageError(str(e)) from None
  logging.set_verbosity(logging.WARNING)
  from vmr_jax import checkpoints, from_checkpoint, preemption, train, workdir_lock  # keeps --help fast
  try:
    if _MODE.value == "train":
      train.train_and_evaluate(config, _WORKDIR.value)
    elif _MODE.value == "eval":
      from_checkpoint.evaluate_checkpoint(config, _WORKDIR.value, _CHECKPOINT.value,
                                  _SPLIT.value or config.eval.test_split)
    elif _MODE.value == "export":
      directory = from_checkpoint.export_checkpoint(
          config, _WORKDIR.value, _CHECKPOINT.value,
          _EXPORT_DIR.value or os.path.join(_WORKDIR.value, "export"))
      if distributed.is_main():
        print(f"exported to {directory}")
    else:
      sentences = from_checkpoint.read_sentences(_SENTENCES.value, _SENTENCES_FILE.value)
      from_checkpoint.predict(config, _WORKDIR.value, _CHECKPOINT.value, sentences,
                      video=_VIDEO.value, split=_SPLIT.value or config.eval.test_split,
                      features=_FEATURES.value, duration=_DURATION.value)
  except (DatasetNotBuiltError, DataMismatchError, NotInDatasetError,
          workdir_lock.WorkdirInUseError,
          checkpoints.CheckpointError, from_checkpoint.InputError) as e:
    raise app.UsageError(str(e)) from None
  except preemption.Preempted as e:
    print(e, flush=True)
    sys.exit(preemption.EXIT_STATUS)


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main)
