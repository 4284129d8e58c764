"""Dagster Definitions: every study under the studies folder becomes an asset group, whatever its
kind. A study file that does not load, or whose definitions cannot be built, is left out alone:
the others load, and it shows as a sensor ``<file>__invalid_study_file`` whose description and
skip reason are its one-line error (the sensor asks for a reload once the file is fixed)."""
from __future__ import annotations

import logging

from dagster import Definitions

from benchmark_assets.defs import rectangle_ranges, scale_out
from benchmark_assets.defs.assets import build_assets
from benchmark_assets.defs.broken_study import build_broken_study_sensor
from benchmark_assets.defs.health import build_health_check, build_health_sensor
from benchmark_assets.defs.hygiene import build_ledger_sensor
from benchmark_assets.defs.inbox_watch import build_inbox_sensor
from benchmark_assets.defs.regression_watch import build_regression_sensor, build_regressions_asset
from benchmark_assets.defs.resources import study_resources
from benchmark_assets.defs.retention import build_retention_schedule
from benchmark_assets.defs.run_job import build_run_job
from benchmark_assets.defs.schedules import build_schedule
from benchmark_assets.defs.study_sensor import build_study_sensor
from benchmark_assets.graph import StudyGraph
from benchmark_assets.studies import Discovery, StudyError, discover


def study_definitions(graph: StudyGraph) -> Definitions:
    """One study's assets, job, sensors and schedule."""
    sensors = [build_study_sensor(graph), *filter(None, [build_inbox_sensor(graph)])]
    return Definitions(assets=[*build_assets(graph), build_regressions_asset(graph)],
                       asset_checks=[build_health_check(graph)],
                       jobs=[build_run_job(graph)],  # the whole study in one click, as fast as the CLI
                       sensors=sensors, schedules=list(filter(None, [build_schedule(graph)])))


def build_definitions(found: Discovery | list) -> Definitions:
    """The definitions of every study that loads and builds; one sensor per file that does not."""
    if not isinstance(found, Discovery):
        found = Discovery(tuple(found))
    graphs, parts, broken = [], [], list(found.broken)
    for study in found.studies:
        try:
            graph = StudyGraph.of(study)
            parts.append(study_definitions(graph))
            graphs.append(graph)
        except Exception as error:  # noqa: BLE001 - one study's definitions must not take the others down
            broken.append(StudyError(study.path, "(definitions)", f"building its Dagster definitions failed: "
                                     f"{type(error).__name__}: {error}", "fix the file, or report the error to "
                                     "the kind's authors"))
            logging.getLogger("benchmark_assets").warning("left out: %s", broken[-1])
    shared = Definitions(sensors=[build_ledger_sensor(), build_regression_sensor(graphs), build_health_sensor(graphs),
                                  *(build_broken_study_sensor(error) for error in broken)],
                         schedules=[build_retention_schedule()],
                         resources=study_resources(),
                         # A scaled-out deployment (a celery broker named in the environment) runs
                         # what the UI launches on its workers.
                         executor=scale_out.executor_def())
    return Definitions.merge(shared, *parts)


rectangle_ranges.install()  # a UI backfill of a trials grid: one run per rectangle
defs = build_definitions(discover())
