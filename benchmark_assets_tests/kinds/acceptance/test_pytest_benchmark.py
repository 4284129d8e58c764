"""An existing pytest-benchmark suite judged without rewriting it: real `pytest --benchmark-json`
runs give the two sides' files, a real Dagster run judges them."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from benchmark_assets.defs.runner import run_study
from benchmark_assets.studies import StudyError, load_study
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import write_study

BENCHMARKS = textwrap.dedent("""\
    import os

    DATA = list(range(300, 0, -1))


    def insertion_sort(values):
        out = list(values)
        for i in range(1, len(out)):
            item, j = out[i], i - 1
            while j >= 0 and out[j] > item:
                out[j + 1] = out[j]
                j -= 1
            out[j + 1] = item
        return out


    def test_sort(benchmark):
        sort = sorted if os.environ["SORT_IMPL"] == "builtin" else insertion_sort
        assert benchmark(sort, DATA)[0] == 1


    def test_sum(benchmark):
        benchmark(sum, DATA)
""")


def run_benchmarks(folder, implementation: str, *options: str) -> None:
    """Run the benchmarks above with real pytest and pytest-benchmark."""
    (folder / "bench_sorting.py").write_text(BENCHMARKS)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "bench_sorting.py", "--rootdir",
               str(folder), "-c", "/dev/null", "--benchmark-max-time=0.05", "--benchmark-min-rounds=20", *options]
    # Not as an xdist worker: pytest-benchmark turns itself off when it believes it is one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env={**env, "SORT_IMPL": implementation})
    assert done.returncode == 0, done.stdout + done.stderr


def pytest_benchmark_json(folder, name: str, implementation: str):
    """--benchmark-json: the report with every round's time."""
    run_benchmarks(folder, implementation, f"--benchmark-json={folder / name}.json")
    return folder / f"{name}.json"


SUITE = """\
kind: acceptance
repeats: 4
benchmarks:
  test_sort:
    baseline: {{pytest_benchmark: {baseline}}}
    optimised: {{pytest_benchmark: {optimised}}}
    criteria:
      - {{name: builtin sort, measure: wall_time, speedup_at_least: 5}}
  sum_unchanged:
    baseline: {{pytest_benchmark: {baseline}, name: test_sum}}
    optimised: {{pytest_benchmark: {optimised}, name: test_sum}}
    criteria:
      - {{name: sum no more than 10x slower, measure: wall_time, max_increase: 9}}
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pytest_benchmark")
    return {"folder": folder,
            "base": pytest_benchmark_json(folder, "base", "insertion"),
            "opt": pytest_benchmark_json(folder, "opt", "builtin"),
            "autosaved": autosaved(folder)}


def autosaved(folder):
    """--benchmark-autosave without --benchmark-save-data: one file per run, summary figures only."""
    store = folder / "store"
    for implementation in ("insertion", "builtin"):
        run_benchmarks(folder, implementation, "--benchmark-autosave", f"--benchmark-storage=file://{store}")
    (machine,) = store.iterdir()
    return machine


def test_two_pytest_benchmark_files_are_judged_round_by_round(instance, study_dir, results):
    write_study(study_dir, "pb", SUITE.format(baseline=results["base"], optimised=results["opt"]))
    study = load_study(study_dir / "pb.yaml")
    rounds = {side: len(json.loads(results[k].read_text())["benchmarks"][0]["stats"]["data"])
              for side, k in (("baseline", "base"), ("optimised", "opt"))}
    run_study("pb", quiet=True, instance=instance)
    trials = Warehouse().read("pb__trials")
    sort = trials[trials["benchmark"] == "test_sort"]
    # Every round of each file is a row, spread over the repeat partitions, none twice.
    assert sort.groupby("side").size().to_dict() == rounds
    assert (sort["source"] == "pytest-benchmark rounds").all() and (sort["position"] == -1).all()
    assert sorted(sort.loc[sort["side"] == "baseline", "round"]) == list(range(rounds["baseline"]))
    assert set(sort["repeat"]) == {0, 1, 2, 3} and study.spec.repeats == 4

    verdicts = Warehouse().read("pb__verdicts").set_index("criterion")
    sorted_faster = verdicts.loc["builtin sort"]
    assert sorted_faster["verdict"] == "met", sorted_faster["reason"]
    assert "per-round times of separate pytest-benchmark runs (unpaired, Welch" in sorted_faster["reason"]
    assert verdicts.loc["sum no more than 10x slower", "verdict"] == "met"


def test_summary_only_files_are_judged_from_their_figures_and_say_so(instance, study_dir, results):
    folder = results["autosaved"]
    assert [json.loads(f.read_text())["benchmarks"][0]["stats"].get("data") for f in sorted(folder.iterdir())] \
        == [None, None]  # what autosave keeps without --benchmark-save-data
    write_study(study_dir, "pbs", SUITE.format(baseline=f"{folder}, commit: previous",
                                               optimised=f"{folder}, commit: latest"))
    run_study("pbs", quiet=True, instance=instance)
    trials = Warehouse().read("pbs__trials")
    assert len(trials) == 4 and (trials["source"] == "pytest-benchmark summary").all()
    verdict = Warehouse().read("pbs__verdicts").set_index("criterion").loc["builtin sort"]
    assert verdict["verdict"] == "met"
    assert "summary figures only" in verdict["reason"] and "--benchmark-save-data" in verdict["reason"]


def test_a_folder_of_autosaved_files_is_read_by_commit(study_dir, results, tmp_path):
    folder = tmp_path / "Linux-CPython-3.11-64bit"
    folder.mkdir()
    for number, (key, commit) in enumerate((("base", "aaaa111"), ("opt", "bbbb222")), start=1):
        document = json.loads(results[key].read_text())
        document["commit_info"]["id"] = commit + "0" * 33
        (folder / f"{number:04d}_{commit}.json").write_text(json.dumps(document))
    text = SUITE.split("  sum_unchanged:")[0].format(baseline=f"{folder}, commit: previous",
                                                     optimised=f"{folder}, commit: bbbb")
    study = load_study(write_study(study_dir, "folder", text))
    assert study.ingested[("test_sort", "baseline")][0].name == "0001_aaaa111.json"
    assert study.ingested[("test_sort", "optimised")][1].commit.startswith("bbbb222")


@pytest.mark.parametrize("side, problem", [
    ("{pytest_benchmark: not_there.json}", "not_there.json does not exist"),
    ("{pytest_benchmark: broken.json}", "broken.json is not JSON"),
    ("{pytest_benchmark: other.json}", "other.json is JSON but not a pytest-benchmark file"),
    ("{pytest_benchmark: BASE, name: test_nothing}", "has no benchmark 'test_nothing' (it has: test_sort, test_sum)"),
    ("{call: 'benchmark_assets_tests.acceptance_sides:baseline'}", "one side is read from pytest-benchmark"),
])
def test_bad_pytest_benchmark_sides_are_one_line(study_dir, results, side, problem):
    (study_dir / "broken.json").write_text("{not json")
    (study_dir / "other.json").write_text('{"results": []}')
    text = SUITE.split("  sum_unchanged:")[0].format(baseline="X", optimised=results["opt"])
    text = text.replace("{pytest_benchmark: X}", side.replace("BASE", str(results["base"])))
    with pytest.raises(StudyError) as caught:
        load_study(write_study(study_dir, "bad", text))
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.field_path.startswith("benchmarks.test_sort.baseline")


def test_a_file_with_rounds_against_one_with_figures_only_is_judged_from_figures(study_dir, results):
    from benchmark_assets.kinds.acceptance.analysis import judge_suite
    from benchmark_assets.kinds.acceptance.trials import run_acceptance_trials

    optimised = sorted(results["autosaved"].iterdir())[-1]
    study = load_study(write_study(study_dir, "mixed", SUITE.split("  sum_unchanged:")[0].format(
        baseline=results["base"], optimised=optimised)))
    trials = run_acceptance_trials(study, [("test_sort", r) for r in range(4)])
    verdict = judge_suite(study, trials).iloc[0]
    base = json.loads(results["base"].read_text())["benchmarks"][0]["stats"]["data"]
    assert verdict["baseline_mean"] == pytest.approx(sum(base) / len(base))
    assert verdict["verdict"] == "met" and "summary figures only" in verdict["reason"]


def test_a_single_round_is_inconclusive_with_the_reason_not_a_crash(study_dir, results, tmp_path):
    from benchmark_assets.kinds.acceptance.analysis import judge_suite
    from benchmark_assets.kinds.acceptance.trials import run_acceptance_trials

    document = json.loads(results["opt"].read_text())
    for entry in document["benchmarks"]:  # what a slow benchmark with --benchmark-min-rounds=1 gives
        entry["stats"].update(data=entry["stats"]["data"][:1], rounds=1, stddev=0.0)
    one = tmp_path / "one_round.json"
    one.write_text(json.dumps(document))
    study = load_study(write_study(study_dir, "one", SUITE.split("  sum_unchanged:")[0].format(
        baseline=results["base"], optimised=one)))
    trials = run_acceptance_trials(study, [("test_sort", r) for r in range(4)])
    verdict = judge_suite(study, trials).iloc[0]
    assert verdict["verdict"] == "inconclusive"
    assert "at least 2 rounds per side are needed for an interval, got 1" in verdict["reason"]


def test_runs_put_in_the_inbox_join_their_side(instance, study_dir, results, tmp_path, monkeypatch):
    """A pytest-benchmark file in the suite's inbox (optimised/) is one more run of that side: its
    rounds join the side's for the benchmarks read from files, judged together."""
    from benchmark_assets.defs.runner import ingest_study
    from benchmark_assets.kinds.base import INBOX_BASE

    monkeypatch.setenv("BENCHMARK_ASSETS_INBOX", str(tmp_path / "inbox"))
    write_study(study_dir, "pb", SUITE.format(baseline=results["base"], optimised=results["opt"]))
    run_study("pb", quiet=True, instance=instance)
    before = Warehouse().read("pb__trials")
    optimised = tmp_path / "inbox" / "pb" / "optimised"
    optimised.mkdir(parents=True)
    newer = pytest_benchmark_json(results["folder"], "opt_again", "builtin")
    (optimised / "ci_run_2.json").write_text(newer.read_text())
    (tmp_path / "inbox" / "pb" / "stray.json").write_text(results["opt"].read_text())  # which side? refused

    found, outcome = ingest_study("pb", quiet=True, instance=instance)
    assert [o.path for o in found.ingested] == ["optimised/ci_run_2.json"]
    assert "say which side it is: put it in baseline/ or optimised/" in found.rejected[0].reason
    trials = Warehouse().read("pb__trials")
    added = trials[trials["repeat"] == INBOX_BASE]
    rounds = {b["name"]: len(b["stats"]["data"]) for b in json.loads(newer.read_text())["benchmarks"]}
    assert added.groupby("benchmark").size().to_dict() == {"test_sort": rounds["test_sort"],
                                                            "sum_unchanged": rounds["test_sum"]}
    assert set(added["side"]) == {"optimised"} and len(trials) == len(before) + len(added)
    verdict = Warehouse().read("pb__verdicts").set_index("criterion").loc["builtin sort"]
    assert verdict["verdict"] == "met"
    # The optimised side is judged on both runs' rounds: its mean is theirs taken together.
    sort = trials[(trials["benchmark"] == "test_sort") & (trials["side"] == "optimised")]
    assert verdict["optimised_mean"] == pytest.approx(sort["wall_time"].mean())
    assert outcome["ingested_trials"] == 2
