"""A ratchet-shaped study as its trial partitions grow: end to end, Dagster's share per partition,
peak memory, the code location's load time and the trials asset's partition status through the
webserver; and the per-partition cost on each instance storage.

    .venv/bin/python benchmarks/scale.py                       # 3,600, 36,000 and 100,000 trial partitions
    .venv/bin/python benchmarks/scale.py --sizes 3600 --storage ours,stock,postgres --no-ui

The study is the shipped memory ratchet (72 sweep points, its fast built-in target) with as many
scenarios as the size asks (size / 72), run once by `run_study` in a fresh DAGSTER_HOME in a
subprocess of its own (peak memory is that process's). "Dagster's share" is the wall time less
the target's own time (the trials' summed durations), over every partition the run materialised.
The UI figures come from `dagster-webserver` started on the same home: the time until the code
location is loaded (webserver start included), then a GraphQL query of the trials asset's
partition status and counts, as its page asks.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POINTS = 72  # the memory ratchet's sweep points
STOCK_YAML = "telemetry:\n  enabled: false\n"
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/"

RUN = """
import json, resource, time
from dagster import DagsterInstance
from benchmark_assets.defs.runner import run_study
from benchmark_assets.warehouse import Warehouse
with DagsterInstance.get() as instance:
    started = time.perf_counter()
    outcome = run_study("scale", quiet=True, instance=instance)
    wall = time.perf_counter() - started
    storage = type(instance.event_log_storage).__name__
trials = Warehouse().read("scale__trials")
print(json.dumps({"seconds": wall, "user_seconds": float(trials["duration_seconds"].sum()), "trials": len(trials),
                  "stages": [(s.label, round(s.seconds, 2)) for s in outcome.stages], "storage": storage,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

LOCATION = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

PARTITIONS = """query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename ... on AssetNode {
  partitionStats { numMaterialized numPartitions numFailed numMaterializing }
  assetPartitionStatuses { __typename ... on MultiPartitionStatuses { primaryDimensionName ranges {
    primaryDimStartKey primaryDimEndKey secondaryDim { __typename ... on DefaultPartitionStatuses {
    materializedPartitions failedPartitions } } } } } } } }"""


def study_text(size: int) -> str:
    text = (ROOT / "studies" / "memory_ratchet.yaml").read_text()
    count = max(2, round(size / POINTS))
    return text.replace("count: 50", f"count: {count}").replace("enabled: false", "enabled: false\n", 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(base: str, query: str, variables: dict | None = None, timeout: float = 120) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["data"]


def postgres_database() -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"scale_{os.getpid()}_{int(time.time())}"
    engine = sa.create_engine(POSTGRES + "test", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, POSTGRES + name


def drop_postgres(name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES + "test", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def run_once(size: int, storage: str, *, ui: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="scale_"))
    home, studies = root / "home", root / "studies"
    home.mkdir()
    studies.mkdir()
    (studies / "scale.yaml").write_text(study_text(size))
    (home / "dagster.yaml").write_text(STOCK_YAML if storage == "stock" else (ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCHMARK_ASSETS_STUDIES": str(studies),
           "PYTHONPATH": str(ROOT), "BENCHMARK_ASSETS_SENSOR_SECONDS": "3600"}
    for name in ("BENCHMARK_ASSETS_POSTGRES_URL", "BENCHMARK_ASSETS_WAREHOUSE_URL", "BENCHMARK_ASSETS_CELERY_BROKER"):
        env.pop(name, None)
    database = None
    if storage == "postgres":
        database, env["BENCHMARK_ASSETS_POSTGRES_URL"] = postgres_database()
    try:
        process = subprocess.Popen([sys.executable, "-c", RUN], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        out, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"the run failed:\n{err[-3000:]}")
        result = json.loads(out.strip().splitlines()[-1])
        result["size"] = size
        if ui:
            result.update(ui_figures(env))
        return result
    finally:
        if database:
            drop_postgres(database)
        shutil.rmtree(root, ignore_errors=True)


def ui_figures(env: dict) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-m", "benchmark_assets.definitions",
                               "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        loaded = None
        while loaded is None:
            if server.poll() is not None or time.perf_counter() - started > 600:
                log.seek(0)
                raise SystemExit(f"the webserver did not load the code location:\n{log.read()[-3000:].decode()}")
            try:
                entries = graphql(base, LOCATION, timeout=30)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    kinds = {e["locationOrLoadError"]["__typename"] for e in entries}
                    if kinds != {"RepositoryLocation"}:
                        raise SystemExit(f"the code location failed to load: {entries}")
                    loaded = time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.2)
        asked = time.perf_counter()
        node = graphql(base, PARTITIONS, {"path": ["scale", "trials"]}, timeout=600)["assetNodeOrError"]
        answered = time.perf_counter() - asked
        stats = node["partitionStats"]
        return {"location_seconds": loaded, "partitions_page_seconds": answered,
                "ui_materialized": stats["numMaterialized"], "ui_partitions": stats["numPartitions"]}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3600,36000,100000", help="trial partitions, comma separated")
    parser.add_argument("--storage", default="ours", help="ours, stock, postgres (comma separated)")
    parser.add_argument("--no-ui", action="store_true", help="skip the webserver figures")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'storage':<9} {'trials':>7} {'wall s':>7} {'target s':>8} {'Dagster ms/partition':>20} {'peak MB':>8} "
          f"{'location s':>10} {'page s':>7}  stages")
    for storage in args.storage.split(","):
        for size in sizes:
            r = run_once(size, storage, ui=not args.no_ui)
            partitions = r["trials"] + r["trials"] // POINTS + POINTS  # trials, catalog, aggregates
            share = 1000 * (r["seconds"] - r["user_seconds"]) / partitions
            ui = (f"{r['location_seconds']:>10.1f} {r['partitions_page_seconds']:>7.2f}" if "location_seconds" in r
                  else f"{'-':>10} {'-':>7}")
            stages = ", ".join(f"{label} {seconds:.1f}" for label, seconds in r["stages"])
            print(f"{storage:<9} {r['trials']:>7} {r['seconds']:>7.1f} {r['user_seconds']:>8.1f} {share:>20.2f} "
                  f"{r['peak_mb']:>8.0f} {ui}  {stages}  [{r['storage']}]", flush=True)
            if "ui_materialized" in r and r["ui_materialized"] != r["trials"]:
                print(f"  the UI counts {r['ui_materialized']} of {r['ui_partitions']} materialised", flush=True)


if __name__ == "__main__":
    main()
