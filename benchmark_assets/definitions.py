"""Dagster Definitions: every study under the studies folder becomes an asset group, whatever its kind."""
from __future__ import annotations

from dagster import Definitions

from benchmark_assets.defs import rectangle_ranges, scale_out
from benchmark_assets.defs.builder import build_ledger_sensor, build_study
from benchmark_assets.defs.inbox_watch import build_inbox_sensor
from benchmark_assets.defs.regression_watch import build_regression_sensor, build_regressions_asset
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.runner import build_run_job
from benchmark_assets.studies import discover_studies


def build_definitions(studies: list) -> Definitions:
    assets, sensors, schedules, jobs = [], [build_ledger_sensor(), build_regression_sensor(studies)], [], []
    for study in studies:
        study_assets, study_sensors, study_schedules = build_study(study)
        assets += [*study_assets, build_regressions_asset(study)]
        jobs.append(build_run_job(study))  # the whole study in one click, as fast as the CLI
        sensors += [*study_sensors, *filter(None, [build_inbox_sensor(study)])]
        schedules += study_schedules
    # A scaled-out deployment (a celery broker named in the environment) runs what the UI launches on its workers.
    return Definitions(assets=assets, sensors=sensors, schedules=schedules, jobs=jobs, resources=study_resources(),
                       executor=scale_out.executor_def())


rectangle_ranges.install()  # a UI backfill of a trials grid: one run per rectangle
defs = build_definitions(discover_studies())
