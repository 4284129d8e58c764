"""$BENCHMARK_ASSETS_SENSOR_SECONDS caps every sensor's interval (the UI tests tick every 5 s with it)."""
import pytest

from benchmark_assets.defs.ticks import SENSOR_SECONDS_ENV, sensor_interval


def test_the_cap_shortens_long_intervals_and_leaves_short_ones(monkeypatch):
    monkeypatch.delenv(SENSOR_SECONDS_ENV, raising=False)
    assert sensor_interval(30) == 30
    monkeypatch.setenv(SENSOR_SECONDS_ENV, "5")
    assert (sensor_interval(30), sensor_interval(300), sensor_interval(3)) == (5, 5, 3)


@pytest.mark.parametrize(("value", "words"), [("soon", "is not a whole number"), ("0", "must be at least 1")])
def test_a_bad_cap_is_one_line_naming_the_variable(monkeypatch, value, words):
    monkeypatch.setenv(SENSOR_SECONDS_ENV, value)
    with pytest.raises(ValueError, match=words) as raised:
        sensor_interval(30)
    assert str(raised.value).startswith(f"${SENSOR_SECONDS_ENV}=") and "\n" not in str(raised.value)


def test_every_sensor_of_the_definitions_takes_the_cap(monkeypatch, toy_study):
    from benchmark_assets.definitions import build_definitions

    monkeypatch.setenv(SENSOR_SECONDS_ENV, "5")
    sensors = build_definitions([toy_study]).sensors
    assert {s.name: s.minimum_interval_seconds for s in sensors} == {
        "ledger_settlement": 5, "regression_watch": 5, "toy__study_changes": 5, "benchmark_assets__health": 5}
    monkeypatch.delenv(SENSOR_SECONDS_ENV)
    assert {s.name: s.minimum_interval_seconds for s in build_definitions([toy_study]).sensors} == {
        "ledger_settlement": 15, "regression_watch": 300, "toy__study_changes": 30, "benchmark_assets__health": 60}
