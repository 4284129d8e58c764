"""One notion of a current trial (``kinds.base``): a stored row is current when its fingerprint is
what the study asks for now for that row and it is one of the study's own repeats or was
ingested; a row says it was ingested by its source. Rows stored by older versions (another
fingerprint column, no source) are read as they were meant."""
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from benchmark_assets.kinds.base import INBOX_BASE, fingerprints, is_current, is_ingested


def test_a_row_is_current_when_its_fingerprint_is_asked_for_and_it_is_the_studys_or_ingested():
    trials = pd.DataFrame({"arm": ["a", "a", "a", "b", "b"], "seed": [1, 2, 9, 1, INBOX_BASE + 1],
                           "fingerprint": ["fa", "old", "fa", "fb", "fb"],
                           "source": ["measured", "measured", "measured", "measured", "inbox:b/seed_1.csv"]})
    expected = trials["arm"].map({"a": "fa", "b": "fb"})
    own = trials["seed"].isin([1, 2])
    assert is_current(trials, expected, own).tolist() == [True, False, False, True, True]
    gone = trials["arm"].map({"a": "fa"})  # b is no longer in the study: its rows are not current
    assert is_current(trials, gone, own).tolist() == [True, False, False, False, False]


def test_rows_of_older_versions_keep_their_meaning():
    old = pd.DataFrame({"arm": ["a", "a"], "seed": [1, INBOX_BASE + 4], "arm_fingerprint": ["fa", "fi"]})
    assert fingerprints(old).tolist() == ["fa", "fi"]  # the column an older version wrote
    by_key = old["seed"] >= INBOX_BASE  # how the kind told before the source column
    assert is_ingested(old, by_key).tolist() == [False, True]
    assert is_ingested(old).tolist() == [False, False]
    # A source this version does not write (a column an older version used for something else)
    # is not trusted: the legacy rule says.
    mixed = pd.DataFrame({"seed": [INBOX_BASE + 1, 3, 4], "source": [None, "inbox:x.csv", "pytest-benchmark rounds"]})
    assert is_ingested(mixed, mixed["seed"] >= INBOX_BASE).tolist() == [True, True, False]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5), st.sampled_from(["fa", "fb", "x"]),
                          st.booleans()), max_size=30))
def test_is_current_matches_its_definition_row_by_row(rows):
    trials = pd.DataFrame(rows, columns=["arm", "seed", "fingerprint", "from_file"])
    trials["source"] = ["inbox:f.csv" if f else "measured" for f in trials["from_file"]]
    asked = {"a": "fa", "b": "fb"}
    expected = trials["arm"].map(asked)
    own = trials["seed"] < 3
    got = is_current(trials, expected, own).tolist()
    want = [asked.get(a) == f and (s < 3 or ff) for a, s, f, ff in rows]
    assert got == want
