"""Dagster Definitions: every study under the studies folder becomes an asset group."""
from __future__ import annotations

from dagster import Definitions

from benchmark_assets.defs.comparison_assets import build_comparison_assets
from benchmark_assets.defs.automation import (
    build_comparison_sensor,
    build_load_sweep_sensor,
    build_study_schedule,
    build_study_sensor,
)
from benchmark_assets.defs.io_manager import study_resources
from benchmark_assets.defs.load_sweep_assets import build_load_sweep_assets
from benchmark_assets.defs.study_assets import build_study_assets, study_partitions
from benchmark_assets.studies.spec import discover_studies


def build_definitions(studies: list) -> Definitions:
    assets, sensors, schedules = [], [], []
    for study in studies:
        if study.kind == "load_sweep":
            assets.extend(build_load_sweep_assets(study))
            sensors.append(build_load_sweep_sensor(study))
            continue
        if study.kind == "comparison":
            assets.extend(build_comparison_assets(study))
            sensors.append(build_comparison_sensor(study))
            continue
        parts = study_partitions(study)
        assets.extend(build_study_assets(study))
        sensors.append(build_study_sensor(study, parts))
        schedules.append(build_study_schedule(study, parts))
    return Definitions(assets=assets, sensors=sensors, schedules=schedules, resources=study_resources())


defs = build_definitions(discover_studies())
