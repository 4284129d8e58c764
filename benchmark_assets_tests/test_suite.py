"""The project as a package and as a test suite: the wheel ships only the package, ruff passes on
it, and the xdist groups this suite relies on are honoured (a test that shares a server or a broker
never runs beside its partner)."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from benchmark_assets_tests.conftest import ROOT

pytestmark = pytest.mark.system


def _clean_env() -> dict:
    """This environment without the xdist worker's variables (an inner pytest is no worker)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}


def test_the_wheel_holds_only_the_package(tmp_path):
    # A copy of what a build reads, with the tests beside the package as in the checkout (and
    # nothing that other tests running meanwhile write in the checkout, nor an editable install's build/).
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("benchmark_assets", "benchmark_assets_tests"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("benchmark_assets-*.whl")
    tops = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"benchmark_assets", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, tops
    names = zipfile.ZipFile(wheel).namelist()
    assert "benchmark_assets/kinds/ratchet/kind.py" in names and not any("_tests" in name for name in names)


def test_ruff_passes_on_the_package_the_tests_and_the_benchmarks():
    ruff = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
    assert ruff, "ruff is not installed (pip install -e '.[test]')"
    checked = subprocess.run([ruff, "check", "--no-cache", "benchmark_assets", "benchmark_assets_tests", "benchmarks"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path):
    """pytest-xdist's ``--dist loadgroup`` sends the tests of a group to one worker; with pytest 9.2
    it silently stopped doing so (node ids are no longer renamed), which is why pytest is capped."""
    tests = tmp_path / "grouped"
    tests.mkdir()
    for name in ("a", "b", "c"):
        (tests / f"test_{name}.py").write_text(
            "import os, pathlib, time\nimport pytest\n\n\n@pytest.mark.xdist_group('shared')\n"
            f"def test_{name}():\n    time.sleep(0.2)\n"
            f"    pathlib.Path({str(tmp_path)!r}, '{name}').write_text(os.environ['PYTEST_XDIST_WORKER'])\n")
    for index in range(6):
        (tests / f"test_free_{index}.py").write_text("import time\n\n\ndef test_free():\n    time.sleep(0.2)\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
                           "--rootdir", str(tmp_path), "-n", "2", "--dist", "loadgroup", str(tests)],
                          cwd=tmp_path, capture_output=True, text=True, env=_clean_env(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {(tmp_path / name).read_text() for name in ("a", "b", "c")}
    assert len(workers) == 1, workers
