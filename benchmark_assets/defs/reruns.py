"""Reruns launched by the study sensor, the inbox sensor and the nightly schedule: each is a run
of the study's ``<study>__run_study`` job, so follow-ups, ledger settlement and the report happen
as from the CLI (an asset backfill stays what a person uses for hand-picked partitions). The
study sensor's state between ticks lives in the instance's key-value store, named by its cursor."""
from __future__ import annotations

import hashlib
import json

from dagster import RunRequest

from benchmark_assets.defs.tags import REASON_TAG
from benchmark_assets.edits import Rerun
from benchmark_assets.graph import StudyGraph


def stages_op(graph: StudyGraph) -> str:
    """The name of the ``<study>__run_study`` job's one op (its config is the run's)."""
    return f"{graph.name}__stages"


def study_run_request(graph: StudyGraph, rerun: Rerun | None, *, reason: str, force: bool = False,
                      tags: dict | None = None) -> RunRequest:
    """A run of the study's job: ``rerun`` (None: the whole study, as `benchmark-assets run`),
    ``force`` reruns trials already up to date."""
    config = {"force": force, **({"only": rerun.config()} if rerun is not None else {})}
    return RunRequest(job_name=graph.run_job, run_config={"ops": {stages_op(graph): {"config": config}}},
                      tags={**(tags or {}), REASON_TAG: reason[:200]})


def _states_key(study_name: str) -> str:
    return f"benchmark_assets/study_state/{study_name}"


def _legacy_state_key(study_name: str, digest: str) -> str:  # one key per state, before they were bounded
    return f"benchmark_assets/study_state/{study_name}/{digest}"


def store_sensor_state(instance, study_name: str, state: dict, previous_cursor: str | None = None) -> str:
    """Keep the study's state (every point's fingerprint...) in the instance's key-value store and
    return a one-line cursor naming it: the sensor page shows the cursor, so it stays short. One
    key per study holds this state and the one ``previous_cursor`` names (a tick whose cursor was
    not saved is evaluated again against it), nothing older: the store does not grow with edits."""
    text = json.dumps(state)  # key order is part of the state: the order of points and replicates
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    key = _states_key(study_name)
    stored = json.loads(instance.run_storage.get_cursor_values({key}).get(key) or "{}")
    before = _digest(previous_cursor)
    kept = {d: t for d, t in stored.items() if d == before}
    instance.run_storage.set_cursor_values({key: json.dumps({**kept, digest: text})})
    return f"{digest}: {len(state['points'])} points, {len(state['replicates'])} replicates, study {state['hash']}"


def _digest(cursor: str | None) -> str | None:
    return cursor.split(":", 1)[0] if cursor and not cursor.lstrip().startswith("{") else None


def load_sensor_state(instance, study_name: str, cursor: str | None) -> dict | None:
    """The state a cursor names; a cursor written before states moved out of it is the state itself."""
    if not cursor:
        return None
    if cursor.lstrip().startswith("{"):
        return json.loads(cursor)
    digest, key = _digest(cursor), _states_key(study_name)
    legacy = _legacy_state_key(study_name, digest)
    found = instance.run_storage.get_cursor_values({key, legacy})
    text = json.loads(found.get(key) or "{}").get(digest) or found.get(legacy)
    return json.loads(text) if text else None
