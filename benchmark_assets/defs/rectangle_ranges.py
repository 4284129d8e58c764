"""One run per rectangle of a two-dimensional partition grid: for the CLI's stages and for Dagster's
own backfills ("Materialize all" in the UI, the study sensor's reruns, the nightly schedule).

A range over a ``MultiPartitionsDefinition`` means the product of its per-dimension ranges
(``MultiPartitionsDefinition.get_partition_keys_in_range``), so one range covers a whole rectangle
of trials. Dagster's ``DefaultPartitionsSubset.get_partition_key_ranges`` does not use that: it
holds each key of the dimension with fewer keys fixed and makes one range along the other, and a
``BackfillPolicy.single_run()`` backfill gets one run per range
(``_build_run_requests_with_backfill_policy``). "Materialize all" of the memory ratchet's trials
was 50 runs (one per seed id), of the comparison's 2 (one per arm).

``install()`` makes that method return rectangles: the subset's keys of one dimension grouped by
the set of keys of the other they have, each group cut into blocks contiguous in both dimensions'
order. The union of the ranges is exactly the subset, as before; there are fewer of them. Subsets
with a time dimension, or with a key a dimension no longer holds, keep Dagster's ranges. Dagster
is pinned below 1.14 (pyproject) and ``benchmark_assets_tests/defs/test_rectangle_ranges.py``
checks the behaviour through Dagster's own run-request builder, so an upgrade that changes it fails
there, not silently. The backfill daemon and the webserver never import the code location, only
the instance's configured classes: ``instance_storage`` (which dagster.yaml names) installs it too.
"""
from __future__ import annotations

from collections.abc import Iterable

from dagster import MultiPartitionKey, MultiPartitionsDefinition, PartitionKeyRange

from benchmark_assets.defs import compat


def contiguous_blocks(selected: list[str], order: list[str]) -> list[list[str]]:
    """Split ``selected`` into runs of neighbours in ``order``: a ranged run covers one block."""
    position = {key: i for i, key in enumerate(order)}
    blocks: list[list[str]] = []
    for key in sorted(selected, key=position.__getitem__):
        if blocks and position[key] == position[blocks[-1][-1]] + 1:
            blocks[-1].append(key)
        else:
            blocks.append([key])
    return blocks


def rectangles(pairs: Iterable[tuple[str, str]], first_order: list[str],
               second_order: list[str]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(first corner, last corner) of rectangles whose union is exactly ``pairs``: first keys that
    need the same second keys go together, then each is cut into contiguous blocks."""
    seconds_of: dict[str, set[str]] = {}
    for first, second in pairs:
        seconds_of.setdefault(first, set()).add(second)
    groups: dict[frozenset, list[str]] = {}
    for first in sorted(seconds_of, key={k: i for i, k in enumerate(first_order)}.__getitem__):
        groups.setdefault(frozenset(seconds_of[first]), []).append(first)
    found = []
    for seconds, firsts in groups.items():
        for first_block in contiguous_blocks(firsts, first_order):
            for second_block in contiguous_blocks(list(seconds), second_order):
                found.append(((first_block[0], second_block[0]), (first_block[-1], second_block[-1])))
    return found


def _grid_ranges(keys, partitions_def: MultiPartitionsDefinition) -> list[PartitionKeyRange] | None:
    primary, secondary = partitions_def.primary_dimension, partitions_def.secondary_dimension
    primary_order = list(primary.partitions_def.get_partition_keys())
    secondary_order = list(secondary.partitions_def.get_partition_keys())
    known_primary, known_secondary = set(primary_order), set(secondary_order)
    pairs = []
    for key in keys:
        by_dimension = partitions_def.get_partition_key_from_str(key).keys_by_dimension
        pair = (by_dimension[primary.name], by_dimension[secondary.name])
        if pair[0] not in known_primary or pair[1] not in known_secondary:
            return None
        pairs.append(pair)

    def key_of(primary_key: str, secondary_key: str) -> str:
        return str(MultiPartitionKey({primary.name: primary_key, secondary.name: secondary_key}))

    return [PartitionKeyRange(key_of(*start), key_of(*end))
            for start, end in rectangles(pairs, primary_order, secondary_order)]


def install() -> None:
    """Idempotent: every process that opens the instance or loads the definitions calls it."""
    compat.install_rectangle_ranges(_grid_ranges)
