"""The package installs offline with Debian's tools and works installed."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import PYDIR


@pytest.mark.guard(300)
def test_offline_install_into_a_system_site_packages_venv(tmp_path):
    for mod in ("venv", "pip", "setuptools"):
        if subprocess.run([sys.executable, "-c", "import " + mod], capture_output=True).returncode:
            pytest.skip("%s has no %s (apt-get install python3-pip python3-setuptools)" % (sys.executable, mod))
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(PYDIR, f), src / f)
    shutil.copytree(os.path.join(PYDIR, "framering"), src / "framering",
                    ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    # --without-pip: no ensurepip (python3-venv) needed; Debian's pip comes
    # from the system site-packages, like numpy and setuptools.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   timeout=120)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_NO_INDEX"] = "1"  # offline: numpy and setuptools come from Debian
    r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", str(src)], env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([py, "-c", "import framering; print(framering.__file__)"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and str(venv) in r.stdout, r.stderr
    r = subprocess.run([py, "-m", "framering", "ls", "--dir", str(tmp_path)], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "no rings in" in r.stderr
