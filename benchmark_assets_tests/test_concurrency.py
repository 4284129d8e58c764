"""Two `benchmark-assets run` at once on a fresh DAGSTER_HOME: no crash, and no trial run twice."""
import os
import subprocess
import sys

import pytest
from dagster import AssetKey, DagsterInstance

from benchmark_assets_tests.conftest import ROOT, write_study
from benchmark_assets_tests.kinds.comparison.test_assets import STUDY

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]


def test_two_runs_of_one_study_at_once_on_a_fresh_home(tmp_path, study_dir, monkeypatch):
    write_study(study_dir, "cmp", STUDY)
    home = tmp_path / "fresh_home"  # does not exist yet: both processes create it
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(study_dir)}
    command = [sys.executable, "-m", "benchmark_assets.cli", "run", "cmp", "--quiet"]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "Error" not in err, err
    ran = sorted(int(out.split("Ran ")[1].split()[0]) for out, _ in outputs)
    assert ran == [1, 12]  # the second waited, then ran only the trial that had failed (it is retried)
    # Normally the second says it waits; one that started only after the first had finished needs not.
    assert sum("waiting for another run of cmp" in err for _, err in outputs) <= 1
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        records = instance.fetch_materializations(AssetKey(["cmp", "trials"]), limit=1000).records
    counts = {}
    for record in records:
        counts[record.partition_key] = counts.get(record.partition_key, 0) + 1
    assert len(counts) == 12 and sum(counts.values()) == 13 and counts["candidate|13"] == 2
