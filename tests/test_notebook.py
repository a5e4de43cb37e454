"""The Colab notebook, headless, top to bottom: on 2 CPU devices, with the tiny
synthetic set and schedule and the tiny release's TACoS files through its parameters
(a cell inserted after its `parameters` cell, as papermill does), and CMHN for its
`MODEL` (the notebook's code is the same for every model, and CMHN compiles in a
fraction of HSCNet's time; the CLI tests cover every model). Its kernel runs in a
venv of its own that sees this environment's packages but not vmr_jax, which the
notebook's install cell installs there from this checkout (this environment's own
install is left alone). Any cell error fails the test."""

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
TACOS_OWN = ("data.name", "eval.iou_thresholds")
MODEL = "cmhn"


def tiny_parameters(directory, data_dir, release) -> dict:
  """The notebook's parameters for the tiny run: `tiny_config("cmhn")` as overrides of
  configs/cmhn_synthetic.py and of configs/cmhn_tacos.py (the same shapes, so the
  TACoS run reuses the compiled programs)."""
  from vmr_jax.configs import cmhn_synthetic, cmhn_tacos
  tiny = tiny_config("cmhn", data_dir, release)
  overrides = {k: v for k, v in changed_fields(tiny, cmhn_synthetic.get_config()).items()
               if k not in SET_BY_THE_NOTEBOOK}
  tacos = {k: v for k, v in changed_fields(tiny, cmhn_tacos.get_config()).items()
           if k not in SET_BY_THE_NOTEBOOK + TACOS_OWN}
  return {
      "PROJECT": str(REPO), "MODEL": MODEL, "WORKDIR": str(directory / "demo"),
      "SYNTHETIC": "tiny", "NUM_STEPS": overrides["train.num_steps"],
      "OVERRIDES": overrides, "TACOS_RELEASE": str(release / "tacos"),
      "GLOVE_FILE": str(release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt"),
      "TACOS_OUT": str(directory / "tacos"),
      # One flag per word: a tuple without its spaces, e.g. cmhn.kernels=(1,2,3,4,6).
      "TACOS_FLAGS": " ".join(f"--config.{k}={str(v).replace(' ', '')}"
                              for k, v in tacos.items()),
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
  tacos = tmp_path / "tacos" / f"{MODEL}_tacos" / "eval" / "test_metrics.json"
  assert json.loads(tacos.read_text())["num_queries"] > 0
