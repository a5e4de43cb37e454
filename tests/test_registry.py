"""Models by name (`vmr_jax.registry`): the per-model tests run every registered model,
so a model added through the registry alone is tested everywhere."""

import re
import subprocess
import sys

import pytest

from tests.cli import environment
from tests.conftest import REPO
from vmr_jax import registry

# The test files whose tests are parametrized by `registry.variants()`.
PER_MODEL_FILES = ("tests/test_train.py", "tests/test_wiring.py", "tests/test_precision.py",
                   "tests/test_predictor.py", "tests/test_bench.py")


def test_names_and_variants():
  assert registry.names()[:5] == ["clear", "cmhn", "fian", "fvmr", "hscnet"]
  variants = registry.variants()
  assert {"clear/paper", "cmhn/paper"} <= set(variants)  # the released reading is the default
  assert all(v.partition("/")[0] in registry.names() for v in variants)


def test_demo_config_sizes_and_readings():
  tiny = registry.demo_config("clear/paper", "tiny")
  assert (tiny.model, tiny.clear.get("reading", "paper"), tiny.data.builder_config) == (
      "clear", "paper", "tiny")
  assert tiny.train.num_steps == 12 and tiny.clear.hidden == 16
  small = registry.demo_config("cmhn", "small")
  assert small.cmhn.reading == "released" and small.text.vectors == "random"
  with pytest.raises(ValueError, match="config argument 'huge': a size"):
    registry.demo_config("cmhn", "huge")


def test_unknown_and_duplicate_names():
  with pytest.raises(registry.UnknownModelError, match="did you mean 'cmhn'"):
    registry.get("cmhnx")
  with pytest.raises(ValueError, match="already registered"):
    registry.register("cmhn", "vmr_jax.models.cmhn", "vmr_jax.configs.cmhn_synthetic")


def test_a_model_registered_from_outside_runs_through_every_per_model_test():
  """tests/toy_model.py registers itself (loaded as a plugin) and nothing else names it:
  every per-model test file runs it, and it passes."""
  out = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.toy_model", "-q", "-n",
                        "0", "-rA", "-k", "toy", *PER_MODEL_FILES], cwd=REPO,
                       env=environment(), capture_output=True, text=True, timeout=1200)
  assert out.returncode == 0, out.stdout[-3000:]
  passed = re.findall(r"^PASSED (tests/\w+\.py)::\w+\[toy\]", out.stdout, re.M)
  assert set(passed) == set(PER_MODEL_FILES), out.stdout[-3000:]
