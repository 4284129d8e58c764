"""The warehouse is configured once: the URL given to the resources reaches the IO manager and the ledger alike."""
from benchmark_assets.defs.runner import run_study
from benchmark_assets.ledger import LEDGER_TABLE, Ledger
from benchmark_assets.warehouse import Warehouse


def test_a_configured_warehouse_url_reaches_the_tables_and_the_ledger(instance, toy_study, dagster_home, tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    run_study("toy", subjects=["alpha"], quiet=True, instance=instance, warehouse_url=url)
    elsewhere = Warehouse(url)
    assert len(elsewhere.read("toy__trials")) == 6 * 10 * 2  # current + 5 alpha values, 10 scenarios, 2 repeats
    ledger = Ledger(elsewhere).read()
    assert list(ledger["subject"]) == ["alpha"] and ledger["kind"].iloc[0] == "ratchet"
    default = Warehouse()  # SQLite under DAGSTER_HOME: nothing went there
    assert not default.has_table("toy__trials") and not default.has_table(LEDGER_TABLE)
