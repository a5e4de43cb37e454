"""The Colab notebook, headless, top to bottom: on 2 CPU devices, with the tiny
synthetic set and schedule and the tiny release's Moment-DETR copy (`jsonl/`) as "your
own data" through its parameters (a cell inserted after its `parameters` cell, as
papermill does), and CMHN for its
`MODEL` (the notebook's code is the same for every model, and CMHN compiles in a
fraction of HSCNet's time; the CLI tests cover every model). Its kernel runs in a
venv of its own that sees this environment's packages but not vmr_jax, which the
notebook's install cell installs there from this checkout (this environment's own
install is left alone); where this environment has the `tensorflow` distribution, as
Colab does, that install must keep it (no TensorFlow of the venv's own). Any cell
error fails the test."""

import importlib.util
import json
import pathlib
import site
import sysconfig
import venv

import jupyter_client
import nbclient
import nbformat

from tests.conftest import REPO, TINY_SPEC
from tests.models import changed_fields, tiny_config
from tests.cli import environment

NOTEBOOK = REPO / "colab" / "vmr_jax_demo.ipynb"
SET_BY_THE_NOTEBOOK = ("data.data_dir", "data.builder_config", "text.glove_file")
# Set by the notebook's last cell, or configs/MODEL_qvhighlights.py's own (QVHighlights'
# windows and metrics).
OWN_DATA_OWN = ("data.name", "eval.test_split", "data.duplicate_sentences",
                "data.max_windows", "eval.iou_thresholds", "eval.moment_detr_metrics")
MODEL = "cmhn"


def tiny_parameters(directory, data_dir, release) -> dict:
  """The notebook's parameters for the tiny run: `tiny_config("cmhn")` as overrides of
  configs/cmhn_synthetic.py and of configs/cmhn_qvhighlights.py, whose run is on the
  tiny release's jsonl copy."""
  from data_pipelines import synthetic_corpus
  from vmr_jax.configs import cmhn_qvhighlights, cmhn_synthetic
  tiny = tiny_config("cmhn", data_dir, release)
  overrides = {k: v for k, v in changed_fields(tiny, cmhn_synthetic.get_config()).items()
               if k not in SET_BY_THE_NOTEBOOK}
  own = {k: v for k, v in changed_fields(tiny, cmhn_qvhighlights.get_config()).items()
         if k not in SET_BY_THE_NOTEBOOK + OWN_DATA_OWN}
  return {
      "PROJECT": str(REPO), "MODEL": MODEL, "WORKDIR": str(directory / "demo"),
      "SYNTHETIC": "tiny", "NUM_STEPS": overrides["train.num_steps"],
      "OVERRIDES": overrides, "OWN_DATA": str(release / "jsonl"),
      "OWN_CLIP_SECONDS": synthetic_corpus.JSONL_CLIP_SECONDS,
      "GLOVE_FILE": str(release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt"),
      "OWN_OUT": str(directory / "own"), "OWN_QUERY": "someone peels the bowl",
      # One flag per word: a tuple without its spaces, e.g. cmhn.kernels=(1,2,3,4,6).
      "OWN_FLAGS": " ".join(f"--config.{k}={str(v).replace(' ', '')}"
                            for k, v in own.items()),
  }


def kernel_manager(directory) -> jupyter_client.KernelManager:
  """A kernel in a new venv at `directory/venv` whose site-packages reach this
  environment's through a .pth file (its own editable vmr_jax install comes later)."""
  env_dir = directory / "venv"
  venv.create(env_dir, with_pip=False, symlinks=True)
  paths = {"base": str(env_dir), "platbase": str(env_dir)}
  purelib = pathlib.Path(sysconfig.get_paths(vars=paths)["purelib"])
  (purelib / "outer_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
  spec = directory / "kernels" / "venv"
  spec.mkdir(parents=True)
  (spec / "kernel.json").write_text(json.dumps({
      "argv": [str(env_dir / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
               "{connection_file}"],
      "display_name": "venv", "language": "python"}))
  specs = jupyter_client.kernelspec.KernelSpecManager(kernel_dirs=[str(spec.parent)])
  return jupyter_client.KernelManager(kernel_name="venv", kernel_spec_manager=specs)


def execute(notebook, directory, parameters: dict, devices: int):
  """Runs `notebook` (in place) in `directory` with `parameters` and `devices` CPU
  devices, in `kernel_manager(directory)`'s kernel; raises
  `nbclient.exceptions.CellExecutionError` on a cell error."""
  at = next(i for i, cell in enumerate(notebook.cells)
            if "parameters" in cell.metadata.get("tags", ()))
  notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(
      "\n".join(f"{name} = {value!r}" for name, value in parameters.items())))
  nbclient.NotebookClient(notebook, km=kernel_manager(directory), timeout=600,
                          coalesce_streams=True,
                          resources={"metadata": {"path": str(directory)}}
                          ).execute(env=environment(devices))


def test_notebook_runs_headless(tmp_path, tiny_data_dir, tiny_release):
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  execute(notebook, tmp_path, tiny_parameters(tmp_path, tiny_data_dir, tiny_release), 2)
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  text = "".join(o.get("text", "") for o in outputs)
  assert "CpuDevice(id=1)" in text  # both devices
  assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the two figures
  assert f"pip install -e {REPO}" in text
  assert list(tmp_path.glob("venv/lib/*/site-packages/vmr_jax-*.dist-info"))  # its own
  assert " s   score " in text  # the typed sentence's ranked moments
  metrics = json.loads((tmp_path / "demo" / MODEL / "eval" / "test_metrics.json")
                       .read_text())
  assert metrics["num_queries"] == 18
  if importlib.util.find_spec("tensorflow") and _has_distribution("tensorflow"):
    added = [p.name for pattern in ("tensorflow-*.dist-info", "tensorflow_cpu-*.dist-info")
             for p in tmp_path.glob(f"venv/lib/*/site-packages/{pattern}")]
    assert not added, f"the install cell put {added} over the environment's TensorFlow"
  # Your own data: the tiny jsonl copy built with no record skipped, trained, searched.
  report = json.loads(next((tmp_path / "own" / "tfds").glob("jsonl/*/build_report.json"))
                      .read_text())
  assert report["skipped"] == {} and report["kept"]["test"]["queries"] == 18
  own = json.loads((tmp_path / "own" / f"{MODEL}_own" / "eval" / "test_metrics.json")
                   .read_text())
  assert own["num_queries"] == 18 and "MR-full-mAP" in own
  assert "someone peels the bowl\n  test" in text  # its ranked moments, by video
  assert "18 queries, 4 videos" in text  # --evaluate on the test split


def _has_distribution(name: str) -> bool:
  from importlib import metadata
  try:
    metadata.distribution(name)
    return True
  except metadata.PackageNotFoundError:
    return False
