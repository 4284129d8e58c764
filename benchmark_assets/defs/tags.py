"""The tags the project puts on Dagster runs, and what they say: why a run ran, who runs it."""
from __future__ import annotations

import os
import socket

REASON_TAG = "benchmark_assets/reason"
LAUNCHED_BY_TAG = "benchmark_assets/launched_by"
# A stage run of the ``<study>__run_study`` job names the job's run that launched it.
PARENT_RUN_TAG = "benchmark_assets/launched_by_run"
PID_TAG, HOST_TAG = "benchmark_assets/pid", "benchmark_assets/host"  # on the CLI's runs: who runs them
STAGE_TAG = "benchmark_assets/stage"  # which stage of a study a run is (shown in the UI's run list)
STUDY_TAG = "benchmark_assets/study"
STUDY_RUN_TAG = "benchmark_assets/study_run"  # the same on every stage run of one run of a study


def run_reason(tags: dict) -> str:
    """Why a run ran, from its tags: the CLI, a sensor, a schedule, a backfill or the UI."""
    reason = tags.get(REASON_TAG, "")
    if tags.get(LAUNCHED_BY_TAG) == "cli":
        return f"CLI: {reason}"
    if tags.get(LAUNCHED_BY_TAG) == "job":
        return f"job run {tags.get(PARENT_RUN_TAG, '?')}: {reason}"
    for tag, what in (("dagster/sensor_name", "sensor"), ("dagster/schedule_name", "schedule")):
        if tag in tags:
            return f"{what} {tags[tag]}" + (f": {reason}" if reason else "")
    if "dagster/backfill" in tags:
        return f"backfill {tags['dagster/backfill']} (launched from the UI or the API)" + (f": {reason}" if reason else "")
    return "launched from the UI or the API" + (f": {reason}" if reason else "")


def process_tags() -> dict[str, str]:
    """Tags that say which process runs a run, so a later process can tell it was abandoned."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
