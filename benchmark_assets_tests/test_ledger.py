"""The ledger: one typed record for every kind, a schema that refuses bad rows, old ledgers migrated in place."""
import json
import math
import uuid

import pandas as pd
import pandera.errors
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_assets.ledger import LEDGER_COLUMNS, LEGACY_TABLE, Ledger, LedgerEntry, Provenance, ledger_rows
from benchmark_assets.warehouse import Warehouse
from benchmark_assets_tests.conftest import POSTGRES_URL, service_unavailable

PROVENANCE = Provenance(study="s", kind="ratchet", git_commit="abc", study_hash="0123456789abcdef", run_id="run-1",
                        decided_at="2026-11-30T12:00:00+00:00")

# Rows exactly as the previous version wrote them: a ratchet verdict and a comparison verdict.
OLD_RATCHET = {"study": "memory_ratchet", "constant": "decay_rate", "tier": 1, "current": 0.3, "proposed": 0.5,
               "decision": "accept", "reason": "validation delta +0.02 > 0.01", "cliff_warning": "",
               "train_delta": 0.03, "validation_delta": 0.02, "ci_low": 0.011, "ci_high": 0.029,
               "corrected_ci_low": 0.004, "p_adjusted": 0.002, "metric": "ndcg_5", "git_commit": "c0ffee",
               "study_hash": "feedfacefeedface", "run_id": "r-old-1", "decided_at": "2026-11-01T03:00:00+00:00"}
OLD_COMPARISON = {**{k: OLD_RATCHET[k] for k in OLD_RATCHET}, "study": "sgd_comparison", "constant": "lr", "tier": 0,
                  "current": 0.05, "proposed": 0.2, "decision": "candidate_better", "reason": "both intervals below 0",
                  "train_delta": float("nan"), "validation_delta": -0.093, "ci_low": -0.104, "ci_high": -0.083,
                  "corrected_ci_low": -0.104, "p_adjusted": 0.0001, "metric": "loss_auc_last25pct",
                  "run_id": "r-old-2", "decided_at": "2026-11-02T03:00:00+00:00",
                  "control_params": '{"lr": 0.05}', "candidate_params": '{"lr": 0.2}'}


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(request, tmp_path):
    if request.param == "sqlite":
        yield Warehouse(f"sqlite:///{tmp_path / 'ledger.db'}")
        return
    schema = f"ledger_test_{uuid.uuid4().hex[:8]}"
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001
        service_unavailable(f"PostgreSQL at {POSTGRES_URL} unreachable: {error.__class__.__name__}")
    yield Warehouse(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def test_an_old_ledger_is_migrated_once_and_its_table_kept(warehouse):
    old = pd.DataFrame([OLD_RATCHET])
    warehouse.append("ledger", old)
    warehouse.append("ledger", pd.DataFrame([OLD_COMPARISON]))  # the comparison widened the old table
    ledger = Ledger(warehouse)
    rows = ledger.read()
    assert list(rows.columns) == list(LEDGER_COLUMNS) and len(rows) == 2
    ratchet, comparison = rows.iloc[0], rows.iloc[1]
    assert (ratchet["kind"], ratchet["subject"], ratchet["baseline"], ratchet["proposal"]) == ("ratchet", "decay_rate",
                                                                                           "0.3", "0.5")
    assert ratchet["baseline_value"] == 0.3 and ratchet["effect"] == 0.02 and ratchet["adjusted_ci_low"] == 0.004
    assert json.loads(ratchet["details"]) == {"tier": 1, "train_delta": 0.03, "cliff_warning": "",
                                              "migrated_from": LEGACY_TABLE}
    assert json.loads(rows.iloc[1]["details"]) == {"migrated_from": LEGACY_TABLE}
    assert ratchet["run_id"] == "r-old-1" and ratchet["git_commit"] == "c0ffee"
    assert comparison["kind"] == "comparison" and json.loads(comparison["proposal"]) == {"lr": 0.2}
    assert math.isnan(comparison["baseline_value"]) and comparison["adjusted_ci_high"] == -0.083
    # The old rows are still there, untouched, under their old table's new name.
    kept = warehouse.read(LEGACY_TABLE)
    assert len(kept) == 2 and set(kept["constant"]) == {"decay_rate", "lr"}
    # Once migrated, reading or appending never migrates again; new rows join the same table.
    assert ledger.migrate() == 0
    ledger.append([LedgerEntry(subject="decay_rate", decision="reject", reason="no gain", metric="ndcg_5",
                               baseline=0.5, proposal=0.7)], PROVENANCE)
    rows = ledger.read(subject="decay_rate")
    assert list(rows["decision"]) == ["accept", "reject"] and len(warehouse.read(LEGACY_TABLE)) == 2


def test_a_new_ledger_has_the_typed_columns_and_filters_by_study_and_kind(warehouse):
    ledger = Ledger(warehouse)
    assert ledger.read().empty
    ledger.append([LedgerEntry(subject="concurrency=16", decision="pareto_optimal", reason="not dominated",
                               metric="request_throughput_avg,time_to_first_token_p99", proposal={"concurrency": 16})],
                  Provenance(**{**PROVENANCE.__dict__, "study": "llm", "kind": "load_sweep"}))
    ledger.append([LedgerEntry(subject="alpha", decision="accept", reason="r", metric="m", baseline=1, proposal=2,
                               effect=0.5, ci_low=0.1, ci_high=0.9, p_value=0.01, p_adjusted=0.03)], PROVENANCE)
    assert list(ledger.read(kind="load_sweep")["subject"]) == ["concurrency=16"]
    row = ledger.read(study="s").iloc[0]
    assert (row["baseline_value"], row["proposal_value"], row["p_adjusted"]) == (1.0, 2.0, 0.03)
    assert json.loads(ledger.read(kind="load_sweep")["proposal"].iloc[0]) == {"concurrency": 16}


@pytest.mark.parametrize(("field", "value"), [("p_value", 1.5), ("ci_low", 2.0), ("confidence_level", 0.0)])
def test_the_ledger_schema_refuses_impossible_numbers(field, value):
    entry = LedgerEntry(subject="a", decision="accept", reason="r", metric="m", ci_low=0.0, ci_high=1.0)
    with pytest.raises(pandera.errors.SchemaError):
        ledger_rows([LedgerEntry(**{**entry.__dict__, field: value})], PROVENANCE)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(0, 1e3), st.floats(0, 1),
                          st.one_of(st.floats(-1e3, 1e3), st.dictionaries(st.sampled_from("xyz"), st.integers()))),
                min_size=1, max_size=5))
def test_ledger_rows_keep_every_number_and_parameter_they_are_given(decisions):
    entries = [LedgerEntry(subject=f"s{i}", decision="d", reason="r", metric="m", effect=effect, ci_low=effect - width,
                           ci_high=effect + width, p_value=p, proposal=proposal)
               for i, (effect, width, p, proposal) in enumerate(decisions)]
    rows = ledger_rows(entries, PROVENANCE)
    for entry, row in zip(entries, rows.to_dict("records")):
        assert row["effect"] == entry.effect and row["p_value"] == entry.p_value
        assert json.loads(row["proposal"]) == entry.proposal
        assert (row["proposal_value"] == float(entry.proposal)) if not isinstance(entry.proposal, dict) \
            else math.isnan(row["proposal_value"])


def test_a_migration_that_fails_midway_changes_nothing(warehouse, monkeypatch):
    warehouse.append("ledger", pd.DataFrame([OLD_RATCHET]))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Warehouse, "append", broken)  # fails after the rename, inside the transaction
    with pytest.raises(RuntimeError, match="disk full"):
        Ledger(warehouse).migrate()
    monkeypatch.undo()
    assert not warehouse.has_table(LEGACY_TABLE) and "constant" in warehouse.read("ledger").columns
    assert len(Ledger(warehouse).read()) == 1 and warehouse.has_table(LEGACY_TABLE)


def test_old_rows_missing_what_the_new_schema_requires_are_kept_not_refused(warehouse):
    warehouse.append("ledger", pd.DataFrame([OLD_RATCHET, {**OLD_RATCHET, "run_id": "r2", "reason": None,
                                                           "decision": None}]))
    rows = Ledger(warehouse).read().set_index("run_id")
    assert rows.loc["r2", "reason"] == "(no reason recorded)" and rows.loc["r2", "decision"] == "unknown"


def test_two_processes_opening_an_old_ledger_at_once_migrate_it_once(warehouse, monkeypatch):
    import threading
    import time

    import benchmark_assets.ledger as ledger_module

    warehouse.append("ledger", pd.DataFrame([OLD_RATCHET]))
    convert = ledger_module._from_legacy

    def slow(old):  # widen the window between reading the old rows and committing the new table
        time.sleep(0.5)
        return convert(old)

    monkeypatch.setattr(ledger_module, "_from_legacy", slow)
    outcomes = {}

    def migrate(name):
        try:
            outcomes[name] = Ledger(Warehouse(warehouse.url)).migrate()
        except Exception as error:  # noqa: BLE001 - the assertion below shows it
            outcomes[name] = repr(error)

    threads = [threading.Thread(target=migrate, args=(name,)) for name in "AB"]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values(), key=str) == [0, 1], outcomes
    assert len(Ledger(warehouse).read()) == 1 and len(warehouse.read(LEGACY_TABLE)) == 1


def test_not_a_number_is_written_as_json_null(warehouse):
    entry = LedgerEntry(subject="concurrency=4", decision="no_data", reason="no successful trial", metric="m",
                        proposal={"concurrency": 4}, details={"means": {"x": float("nan"), "y": float("inf")}})
    Ledger(warehouse).append([entry], PROVENANCE)
    details = Ledger(warehouse).read()["details"].iloc[0]

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    assert json.loads(details, parse_constant=refuse) == {"means": {"x": None, "y": None}}


def _decisions(run_id: str, subjects=("a", "b")) -> tuple[list[LedgerEntry], Provenance]:
    entries = [LedgerEntry(subject=s, decision="accept", reason="r", metric="m", baseline=0.1, proposal=0.2)
               for s in subjects]
    return entries, Provenance(**{**PROVENANCE.__dict__, "run_id": run_id})


def test_a_runs_decisions_wait_until_it_completes_and_settle_exactly_once(warehouse):
    ledger = Ledger(warehouse)
    assert ledger.stage(*_decisions("run-ok")) == 2 and ledger.stage(*_decisions("run-bad", ["c"])) == 1
    assert ledger.read().empty and sorted(ledger.pending_runs()) == ["run-bad", "run-ok"]
    assert ledger.settle("run-ok") == 2
    assert ledger.settle("run-ok") == 0  # settled once: a second settler finds nothing
    assert ledger.discard("run-bad") == 1
    rows = ledger.read()
    assert list(rows["subject"]) == ["a", "b"] and set(rows["run_id"]) == {"run-ok"}
    assert ledger.pending_runs() == []
    assert json.loads(rows["proposal"].iloc[0]) == 0.2 and rows["proposal_value"].iloc[0] == 0.2


def test_two_settlers_of_one_run_at_once_put_its_decisions_in_the_ledger_once(warehouse):
    import threading

    Ledger(warehouse).stage(*_decisions("run-1", [f"s{i}" for i in range(50)]))
    counts, barrier = [], threading.Barrier(4)

    def settle():
        barrier.wait()
        counts.append(Ledger(Warehouse(warehouse.url)).settle("run-1"))

    threads = [threading.Thread(target=settle) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0, 0, 0, 50]
    assert len(Ledger(warehouse).read()) == 50
