"""How often the project's sensors are evaluated.

Each sensor has the interval its work needs (a study file every 30 s, the ledger every 15 s,
regressions every 5 minutes). ``$BENCHMARK_ASSETS_SENSOR_SECONDS`` caps them all, for a demo or a
test that should not wait half a minute for a tick; Dagster's sensor daemon looks at most every
5 s, so a smaller cap changes nothing. Schedules follow their study's own ``schedule.cron``."""
from __future__ import annotations

from benchmark_assets.env_settings import whole_number

SENSOR_SECONDS_ENV = "BENCHMARK_ASSETS_SENSOR_SECONDS"


def sensor_interval(default: int) -> int:
    """``default`` seconds, or the cap in ``$BENCHMARK_ASSETS_SENSOR_SECONDS`` when it is smaller."""
    cap = whole_number(SENSOR_SECONDS_ENV, default, meaning="the most seconds between a sensor's ticks "
                       "(unset: each sensor's own interval)", example=5)
    return min(default, cap)
