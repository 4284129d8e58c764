"""Launch a study from the UI the two ways a user can, through the daemon, and compare with the CLI.

    .venv/bin/python benchmarks/ui_backfill.py [sgd_comparison memory_ratchet llm_load_sweep] [--no-cli]
        [--only backfill|job]

The two ways: "Materialize all" (a backfill of every asset of the study's group) and the study's
job `<study>__run_study` (Launchpad -> Launch run), which runs the study's stages as the CLI does.

Per study, in a fresh DAGSTER_HOME (the project's dagster.yaml): register the study's partition keys
(what `benchmark-assets run` or the study sensor does), start `dagster dev -w workspace.yaml` on
127.0.0.1 (webserver, daemon, code server), wait until the code location is loaded, then send the
UI's GraphQL mutation `launchPartitionBackfill` with every asset of the study's group and
`allPartitions: true`, and poll the backfill until the daemon marks it finished. Printed: the runs
the backfill made per asset (with their partition ranges), when the last run ended and when the
backfill was marked complete (both from the launch), and the CLI's wall time on the same study in
another fresh home. dagster dev and everything it started are stopped at the end of each study.

For the job, the same GraphQL mutation as the Launchpad's button (`launchRun`, empty config) is
sent and the job's run is polled until it ends: printed are its stage runs and when it ended. It
goes through the run queue (the daemon dequeues every few seconds) and a run worker process.

The backfill daemon evaluates backfills every 30 s (dagster._daemon.backfill
.execute_backfill_iteration_loop, not configurable), and a child whose partitions definition
differs from its parent's is requested only in the tick after its parent materialised; so the wall
time is roughly one tick per partitions level of the study, whatever the run count.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STUDIES = ("sgd_comparison", "memory_ratchet", "llm_load_sweep")
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}"""
LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""
RUN_STATUS = """
query RunStatus($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
LOCATION = "benchmark_assets.definitions"  # workspace.yaml's python_module
LOADED = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""



def _instance(home: Path):
    """The Dagster instance in ``home``: its storage (the project's dagster.yaml) finds its SQLite
    files through $DAGSTER_HOME, as in every other process of a deployment."""
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.from_config(str(home))

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL error: {body['errors']}")
    return body["data"]


def fresh_home(prefix: str) -> Path:
    home = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def register(home: Path, study_name: str) -> list:
    """What `benchmark-assets run` does before any run: partition keys and pool limits. Returns the
    study's asset keys (the group "Materialize all" selects)."""

    from benchmark_assets.defs.assets import build_assets
    from benchmark_assets.defs.hygiene import ensure_pool_limit
    from benchmark_assets.defs.partitions import register
    from benchmark_assets.graph import StudyGraph
    from benchmark_assets.studies import load_study

    study = load_study(study_name)
    with _instance(home) as instance:
        register(instance, StudyGraph.of(study))
        for pool in StudyGraph.of(study).pools():
            ensure_pool_limit(instance, pool)
    return [asset.key for asset in build_assets(StudyGraph.of(study))]


class DagsterDev:
    """`dagster dev` on 127.0.0.1 in its own session; stopping it stops everything it started."""

    def __init__(self, home: Path):
        self.home, self.port = home, free_port()
        self.log = open(home / "dagster_dev.log", "w")
        # The study sensors ask this webserver, not one on the default port, to reload after an edit.
        env = {**os.environ, "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_WEBSERVER_URL": f"http://127.0.0.1:{self.port}"}
        self.process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_loaded(self, timeout: float = 180) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited ({self.process.returncode}); see {self.log.name}")
            try:
                entries = graphql(self.port, LOADED, timeout=5)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    kinds = {e["locationOrLoadError"]["__typename"] for e in entries}
                    if kinds != {"RepositoryLocation"}:
                        raise RuntimeError(f"code location failed to load: {entries}")
                    return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        raise RuntimeError("dagster dev did not load the code location in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:  # children that outlived their parent (run workers) are still in the session
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


def poll(status_of, done: set, launched: float, timeout: float):
    """Ask ``status_of()`` every half second until it is in ``done`` or ``timeout`` has passed."""
    status = None
    while time.time() - launched < timeout:
        status = status_of()
        if status in done:
            break
        time.sleep(0.5)
    return status


def since(runs: list[dict], launched: float) -> None:
    """Each run's times as seconds after the launch."""
    for run in runs:
        for field in ("created", "start", "end"):
            run[field] = run[field] - launched if run[field] else None


def ui_backfill(study_name: str, *, timeout: float = 1800) -> dict:
    home = fresh_home(f"ui_backfill_{study_name}_")
    asset_keys = register(home, study_name)
    dev = DagsterDev(home)
    try:
        load_seconds = dev.wait_loaded()
        time.sleep(2)  # the daemon's threads start with the webserver; give them a moment, as a user would
        params = {"assetSelection": [{"path": key.path} for key in asset_keys], "allPartitions": True,
                  "title": f"ui_backfill {study_name}"}
        launched = time.time()
        result = graphql(dev.port, LAUNCH, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"launch failed: {result}")
        backfill_id = result["backfillId"]
        status = poll(lambda: graphql(dev.port, STATUS, {"id": backfill_id})["partitionBackfillOrError"].get("status"),
                      DONE, launched, timeout)
        marked_done = time.time() - launched
        runs = backfill_runs(home, backfill_id)
    finally:
        dev.stop()
    since(runs, launched)
    last_end = max((r["end"] for r in runs if r["end"] is not None), default=0.0)
    return {"home": home, "status": status, "load_seconds": load_seconds, "completed_after": marked_done,
            "last_run_ended_after": last_end, "runs": runs}


def ui_job(study_name: str, *, timeout: float = 1800) -> dict:
    """Launch ``<study>__run_study`` as the Launchpad's button does and wait for its run to end."""
    home = fresh_home(f"ui_job_{study_name}_")
    register(home, study_name)
    dev = DagsterDev(home)
    try:
        load_seconds = dev.wait_loaded()
        time.sleep(2)
        params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                               "jobName": f"{study_name}__run_study"}, "runConfigData": {}}
        launched = time.time()
        result = graphql(dev.port, LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launch failed: {result}")
        run_id = result["run"]["runId"]
        status = poll(lambda: graphql(dev.port, RUN_STATUS, {"id": run_id})["runOrError"].get("status"),
                      DONE | {"SUCCESS", "FAILURE"}, launched, timeout)
        polled_done = time.time() - launched
        runs = job_runs(home, run_id)
    finally:
        dev.stop()
    since(runs, launched)
    job_run = next(r for r in runs if r["job"])
    return {"home": home, "status": status, "load_seconds": load_seconds, "completed_after": polled_done,
            "last_run_ended_after": job_run["end"] or polled_done, "runs": runs}


def job_runs(home: Path, run_id: str) -> list[dict]:
    """The job's run and the stage runs it launched."""
    from dagster import RunsFilter
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from benchmark_assets.defs.tags import PARENT_RUN_TAG, STAGE_TAG

    with _instance(home) as instance:
        records = [*instance.get_run_records(RunsFilter(run_ids=[run_id])),
                   *instance.get_run_records(RunsFilter(tags={PARENT_RUN_TAG: run_id}))]
        return [{"job": r.dagster_run.run_id == run_id, "status": r.dagster_run.status.value,
                 "assets": [r.dagster_run.job_name] if r.dagster_run.run_id == run_id
                 else [r.dagster_run.tags.get(STAGE_TAG, "stage")],
                 "range": (r.dagster_run.tags.get(ASSET_PARTITION_RANGE_START_TAG),
                           r.dagster_run.tags.get(ASSET_PARTITION_RANGE_END_TAG)),
                 "partition": None, "start": r.start_time, "end": r.end_time,
                 "created": r.create_timestamp.timestamp()} for r in records]


def backfill_runs(home: Path, backfill_id: str) -> list[dict]:
    from dagster import RunsFilter
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    with _instance(home) as instance:
        records = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
        return [{"assets": sorted(key.path[-1] for key in (r.dagster_run.asset_selection or ())),
                 "status": r.dagster_run.status.value,
                 "range": (r.dagster_run.tags.get(ASSET_PARTITION_RANGE_START_TAG),
                           r.dagster_run.tags.get(ASSET_PARTITION_RANGE_END_TAG)),
                 "partition": r.dagster_run.tags.get("dagster/partition"),
                 "start": r.start_time, "end": r.end_time,
                 "created": r.create_timestamp.timestamp()} for r in records]


def cli_wall_time(study_name: str) -> tuple[float, int]:
    home = fresh_home(f"ui_backfill_cli_{study_name}_")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "benchmark-assets"), "run", study_name, "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    return time.perf_counter() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="*", default=list(STUDIES))
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI comparison")
    parser.add_argument("--only", choices=("backfill", "job"), help="one way of launching only")
    args = parser.parse_args()
    ways = [w for w in ("job", "backfill") if args.only in (None, w)]
    rows = []
    for study in args.studies:
        cli, code = (float("nan"), None) if args.no_cli else cli_wall_time(study)
        for way in ways:
            outcome = ui_job(study) if way == "job" else ui_backfill(study)
            per_asset: dict[str, list] = defaultdict(list)
            for run in sorted(outcome["runs"], key=lambda r: r["created"]):
                per_asset[", ".join(run["assets"])].append(run)
            print(f"\n## {study} as a {way}: {outcome['status']} (code location loaded in "
                  f"{outcome['load_seconds']:.1f} s)")
            for assets, runs in per_asset.items():
                statuses = sorted({r["status"] for r in runs})
                busy = sum((r["end"] or 0) - (r["start"] or 0) for r in runs)
                example = runs[0]["range"] if runs[0]["range"][0] else runs[0]["partition"]
                print(f"- {assets}: {len(runs)} run(s) {statuses}, {busy:.1f} s in runs; first: {example}")
                for run in runs:
                    print(f"    created +{run['created']:.1f} s, started +{(run['start'] or 0):.1f} s, "
                          f"ended +{(run['end'] or 0):.1f} s  {run['range'] if run['range'][0] else run['partition'] or ''}")
            rows.append((study, way, len(outcome["runs"]), outcome["last_run_ended_after"],
                         outcome["completed_after"], cli, code))
    print("\n| study | launched as | runs | last run ended | marked complete | CLI wall (exit) | ratio (last run) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for study, way, runs, last, complete, cli, code in rows:
        print(f"| {study} | {way} | {runs} | {last:.1f} s | {complete:.1f} s | {cli:.1f} s ({code}) | "
              f"{last / cli:.1f}x |")


if __name__ == "__main__":
    main()
