"""A study graph's nodes as Dagster assets, keyed ``<study>/<node>`` in the asset group
``<study>``, each with its partitions, inputs, code version, pool and blocking schema check. The
only place nodes become assets; it never asks which kind it holds."""
import warnings

from dagster import (
    AllPartitionMapping,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from benchmark_assets.defs import scale_out
from benchmark_assets.defs.metadata import check_name
from benchmark_assets.defs.outputs import computed
from benchmark_assets.defs.partitions import partitions
from benchmark_assets.defs.scale_out.fan_out import fanned_out_trials
from benchmark_assets.defs.step import SubjectSelection
from benchmark_assets.graph import StudyGraph
from benchmark_assets.inbox import with_inbox
from benchmark_assets.kinds.base import POINT, TRIAL, Node
from benchmark_assets.schemas import describe_schema

# Two of Dagster's beta features every study uses (a ranged run per asset, a trial reading its
# point's or seed's partition): said on every load of the definitions, in every process, they
# buried what a person needs to see when `dagster dev` starts. Dagster is pinned below 1.14 and
# the tests exercise both, so the warnings say nothing a user can act on.
warnings.filterwarnings("ignore", category=BetaWarning, message=r"(Parameter `backfill_policy` of function `asset`|"
                        r"Class `MultiToSingleDimensionPartitionMapping`) is currently in beta")


def partition_mapping(graph: StudyGraph, node: Node, upstream: Node):
    """How a node reads an upstream node's partitions: a trial reads its replicate's row, a
    point reads all its trials, an unpartitioned node reads everything."""
    if node.partitioned_by is None or upstream.partitioned_by is None or node.partitioned_by == upstream.partitioned_by:
        return None
    if TRIAL in (node.partitioned_by, upstream.partitioned_by):
        single = node.partitioned_by if upstream.partitioned_by == TRIAL else upstream.partitioned_by
        return MultiToSingleDimensionPartitionMapping((graph.point if single == POINT else graph.replicate).name)
    return AllPartitionMapping()


def build_assets(graph: StudyGraph, *, trial_chunks: int | None = None) -> list[AssetsDefinition]:
    """Every asset of a study, built once per graph and chunk count: the trials asset is cut into
    ``trial_chunks`` measuring steps (default: the deployment's, ``defs.scale_out``; 0: one step,
    in process)."""
    chunks = scale_out.trial_chunks() if trial_chunks is None else trial_chunks

    def build() -> list[AssetsDefinition]:
        versions = graph.versions()
        # A kind that ingests result files: the trials its inbox holds are stored, not measured.
        nodes = {name: with_inbox(graph, node) if node.partitioned_by == TRIAL and graph.inbox_files
                 else node for name, node in graph.nodes.items()}
        return [_asset(graph, node, nodes, versions[node.name], chunks) for node in nodes.values()]

    return graph.once(f"assets/{chunks}", build)


def _asset(graph: StudyGraph, node: Node, nodes: dict[str, Node], version: str, chunks: int) -> AssetsDefinition:
    study = graph.study
    key = AssetKey(graph.asset_path(node.name))
    partitions_def = partitions(graph).of(node.partitioned_by)
    columns = graph.partition_columns(node)
    pool = node.pool(study) if node.pool else None
    ins = {name: AssetIn(key=AssetKey(graph.asset_path(name)), partition_mapping=partition_mapping(graph, node, nodes[name]))
           for name in node.inputs}
    check_specs = [AssetCheckSpec(check_name(node), asset=key, blocking=True, description=(
        f"Every row of {node.name} matches its pandera schema; blocking: a failure stops what depends on it "
        f"and lists the failing rows by their keys. The rules: {describe_schema(node.schema(study))}."))
    ] if node.schema else None
    if node.partitioned_by == TRIAL and chunks:
        return fanned_out_trials(graph, node, partitions_def, version, ins, check_specs, pool, chunks)

    if node.selectable:
        def compute(context: AssetExecutionContext, config: SubjectSelection, **inputs):
            yield from computed(graph, node, context, config.subjects, inputs)
    else:
        def compute(context: AssetExecutionContext, **inputs):
            yield from computed(graph, node, context, [], inputs)

    return asset(
        name=node.name,
        key_prefix=[study.name],
        group_name=study.name,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run() if partitions_def is not None else None,
        io_manager_key="tables",
        required_resource_keys={"ledger", "progress", "warehouse"},
        code_version=version,
        ins=ins,
        deps=[AssetKey(graph.asset_path(name)) for name in node.deps],
        metadata={"partition_columns": columns} if columns else None,
        check_specs=check_specs,
        description=node.description,
        **({"pool": pool} if pool else {}),
    )(compute)
