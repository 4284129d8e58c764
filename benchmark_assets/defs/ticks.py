"""How often the project's sensors are evaluated.

Each sensor has the interval its work needs (a study file every 30 s, the ledger every 15 s,
regressions every 5 minutes). ``$BENCHMARK_ASSETS_SENSOR_SECONDS`` caps them all, for a demo or a
test that should not wait half a minute for a tick; Dagster's sensor daemon looks at most every
5 s, so a smaller cap changes nothing. Schedules follow their study's own ``schedule.cron``."""
from __future__ import annotations

import os

SENSOR_SECONDS_ENV = "BENCHMARK_ASSETS_SENSOR_SECONDS"


def sensor_interval(default: int) -> int:
    """``default`` seconds, or the cap in ``$BENCHMARK_ASSETS_SENSOR_SECONDS`` when it is smaller."""
    text = os.environ.get(SENSOR_SECONDS_ENV, "").strip()
    if not text:
        return default
    try:
        cap = int(text)
    except ValueError:
        raise ValueError(f"{SENSOR_SECONDS_ENV}={text!r} is not a whole number of seconds; "
                         f"Fix: set it to e.g. 5, or unset it for each sensor's own interval") from None
    if cap < 1:
        raise ValueError(f"{SENSOR_SECONDS_ENV}={text!r} must be at least 1; Fix: set it to e.g. 5, "
                         f"or unset it for each sensor's own interval")
    return min(default, cap)
