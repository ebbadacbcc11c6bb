"""Every command module of the CLI imports on its own, in a fresh interpreter: a command module
that imports another's helpers through `ckm.cli` would find it half-initialised."""

import pkgutil
import subprocess
import sys

import pytest

import ckm

MODULES = sorted(f"ckm.{m.name}" for m in pkgutil.iter_modules(ckm.__path__)
                 if m.name != "__main__")


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_on_its_own(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
