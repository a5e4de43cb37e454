"""Install anywhere: how `--config` finds a file (`vmr_jax.config_files`), and the CLI
run from another directory against a non-editable `pip install` of the project."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.models import changed_fields, tiny_config
from tests.cli import command, environment
from vmr_jax import config_files


def test_resolve_prefers_an_existing_file_then_the_installed_configs(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  packaged = os.path.join(config_files.CONFIGS_DIR, "hscnet_tacos.py")
  assert config_files.resolve("configs/hscnet_tacos.py") == packaged
  assert config_files.resolve("./configs/hscnet_tacos.py") == packaged
  assert config_files.resolve("hscnet_tacos.py") == packaged
  assert config_files.resolve("configs/tacos_shaped.py:fian") == (
      os.path.join(config_files.CONFIGS_DIR, "tacos_shaped.py") + ":fian")
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "hscnet_tacos.py").write_text("")
  assert config_files.resolve("configs/hscnet_tacos.py") == "configs/hscnet_tacos.py"
  for missing in ("configs/nope.py", "elsewhere/hscnet_tacos.py"):
    with pytest.raises(ValueError) as error:
      config_files.resolve(missing)
    assert f"no config file {missing}" in str(error.value)
    assert "cmhn_synthetic.py, cmhn_tacos.py" in str(error.value)


def test_every_package_folder_is_installed():
  """pyproject.toml lists the packages (configs/ goes in as vmr_jax.configs): a folder
  with an __init__.py left out of the list would be missing from a wheel."""
  import tomllib
  listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
               ["packages"])
  found = {"vmr_jax.configs"} | {
      str(init.parent.relative_to(REPO)).replace(os.sep, ".")
      for top in ("vmr_jax", "data_pipelines") for init in (REPO / top).rglob("__init__.py")}
  assert listed == found


def test_tensorflow_is_the_tensorflow_distribution_everywhere():
  """One TensorFlow requirement on every platform, and it is `tensorflow`: Colab (and
  many images) ship `tensorflow`, and `tensorflow-cpu` would install a second
  distribution over the same `tensorflow` package."""
  import tomllib
  from packaging.requirements import Requirement
  requirements = [Requirement(r) for r in tomllib.loads(
      (REPO / "pyproject.toml").read_text())["project"]["dependencies"]]
  tensorflow = [r for r in requirements if r.name.startswith("tensorflow")
                and r.name not in ("tensorflow-datasets", "tensorflow-metadata")]
  assert [r.name for r in tensorflow] == ["tensorflow"]
  for system, machines in (("Linux", ("x86_64", "aarch64")), ("Darwin", ("arm64", "x86_64")),
                           ("Windows", ("AMD64",))):
    for machine in machines:
      env = {"platform_system": system, "platform_machine": machine,
             "sys_platform": {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}[system]}
      assert [r.name for r in tensorflow if r.marker is None or r.marker.evaluate(env)] == [
          "tensorflow"], (system, machine)


def test_cli_from_another_directory_on_a_non_editable_install(tmp_path, tiny_data_dir,
                                                              tiny_release):
  source = tmp_path / "source"  # a clean copy: pip builds in the source tree
  source.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(REPO / name, source / name)
  for package in ("configs", "data_pipelines", "vmr_jax"):
    shutil.copytree(REPO / package, source / package,
                    ignore=shutil.ignore_patterns("__pycache__"))
  site = tmp_path / "site"
  out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(site), str(source)],
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = environment() | {"PYTHONPATH": str(site)}  # not the repository

  out = subprocess.run([sys.executable, "-c", "import data_pipelines, vmr_jax, vmr_jax.configs; "
                        "print(vmr_jax.configs.__file__, data_pipelines.__file__, "
                        "vmr_jax.__file__)"],
                       cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-3000:]
  assert all(path.startswith(str(site)) for path in out.stdout.split())
  assert not (site / "configs").exists()  # installed in the project's namespace only

  from vmr_jax.configs import cmhn_synthetic
  overrides = changed_fields(tiny_config("cmhn", tiny_data_dir, tiny_release),
                             cmhn_synthetic.get_config())
  workdir = tmp_path / "workdir"
  out = subprocess.run(command("configs/cmhn_synthetic.py", workdir,
                               *(f"--config.{k}={v}" for k, v in overrides.items())),
                       cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["model"] == "cmhn" and saved["cmhn"]["hidden"] == 16
  assert json.loads((workdir / "eval" / "test_metrics.json").read_text())["num_queries"] == 18

  out = subprocess.run(command("configs/nope.py", workdir), cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert f"no nope.py in the installed configs ({site / 'vmr_jax' / 'configs'})" in out.stderr
  assert "hscnet_tacos.py" in out.stderr
