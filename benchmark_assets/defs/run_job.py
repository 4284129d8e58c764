"""``<study>__run_study``: the whole study in one click from the UI, run as `benchmark-assets run`
runs it (``runner.run_study``), its stages runs of their own tagged with this run's id."""

from dagster import (
    Config,
    DagsterRunStatus,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from benchmark_assets.defs.metadata import stage_links, study_headline
from benchmark_assets.defs.reruns import stages_op
from benchmark_assets.defs.runner import StudyInterrupted, StudyRunError, run_study
from benchmark_assets.defs.tags import PARENT_RUN_TAG, STUDY_TAG, run_reason
from benchmark_assets.edits import Rerun
from benchmark_assets.graph import StudyGraph
from benchmark_assets.outcomes import cli_command
from benchmark_assets.studies import StudyError


class OnlyConfig(Config):
    """A rerun of part of the study (the study sensor's after an edit, the inbox sensor's)."""

    points: list[str] = Field(default_factory=list, description="points whose every trial reruns")
    replicates: list[str] = Field(default_factory=list, description="replicates (scenarios, seeds) run on every point")
    trials: dict[str, list[str]] = Field(default_factory=dict, description="point -> replicates to run besides")
    steps: list[str] = Field(default_factory=list, description="steps (asset names) whose every partition reruns")


class RunStudyConfig(Config):
    """What `benchmark-assets run` takes: empty lists mean the whole study."""

    subjects: list[str] = Field(default_factory=list, description="subjects to decide on (e.g. constants); "
                                "empty: every subject (the CLI's --constants)")
    tiers: list[str] = Field(default_factory=list, description="tiers of subjects, where the kind has them "
                             "(the CLI's --tier)")
    force: bool = Field(default=False, description="rerun trials that are already up to date (the CLI's --force)")
    only: OnlyConfig | None = Field(default=None, description="run only these trials and steps, then what follows "
                                    "them and the follow-ups (set by the study and inbox sensors); empty: the study")


def build_run_job(graph: StudyGraph) -> JobDefinition:
    """One click in the UI (Launchpad -> Launch run) runs the study as `benchmark-assets run` does,
    in this job's run: each stage starts when the one before it ends, and this run's log says
    which stage is running. A backfill of the same assets waits for the daemon's 30 s tick per level."""
    study, kind = graph.study, graph.kind

    @op(name=stages_op(graph),
        description=f"Runs {study.path.name} as `benchmark-assets run {study.name}` does: the trials it needs, "
                    "then the analysis, one run per stage.")
    def run_whole_study(context: OpExecutionContext, config: RunStudyConfig) -> None:
        reason = run_reason(context.run.tags)
        arguments = cli_command(study.name, config.subjects, config.tiers, config.force).removeprefix(
            "benchmark-assets run ")

        def terminated() -> bool:  # Terminate in the UI marks the run CANCELING, then interrupts it
            run = context.instance.get_run_by_id(context.run_id)
            return run is not None and run.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)

        only = config.only
        try:
            trials, steps = None, ()
            if only is not None:
                rerun, now = Rerun(only.points, only.replicates, only.trials, only.steps), StudyGraph.load(study.path)
                trials, steps = rerun.wanted(now), rerun.known_steps(now)
                if dropped := rerun.dropped(now):
                    context.log.warning(f"left out, {study.path.name} no longer has them (the study sensor asks for "
                                        f"what its newer edit needs): {', '.join(dropped[:10])}")
                context.log.info(f"running {rerun.size} of {study.name}, then what follows them")
            outcome = run_study(str(study.path), subjects=config.subjects, tiers=config.tiers, quiet=True,
                                instance=context.instance, force=config.force, launched_by="job",
                                reason=f"{reason}" + ("" if only else f" (as `benchmark-assets run {arguments}`)"),
                                tags={PARENT_RUN_TAG: context.run_id}, log=context.log.info, should_stop=terminated,
                                trials=trials, steps=steps)
        except StudyError as error:  # the study file as it is now, or a subject or tier it does not have
            raise Failure(description=str(error)) from None
        except StudyRunError as error:
            raise Failure(description=str(error), metadata={"trial_errors": MetadataValue.md(
                error.results.text(markdown=True))}) from None
        except StudyInterrupted as stopped:
            raise Failure(description=str(stopped)) from None
        results = outcome.results
        context.log.info(kind.run_summary(outcome))
        decided = study_headline(context.instance, graph)
        if decided:
            context.log.info(f"decided: {decided}")
        context.add_output_metadata({"decided": decided or "nothing yet", **stage_links(outcome.stages)})
        if results.all_failed:
            raise Failure(description=f"every trial failed, so {study.name} decided nothing",
                          metadata={"trial_errors": MetadataValue.md(results.text(markdown=True))})
        if results.failed:
            context.log.warning(results.text(markdown=True))

    @job(name=graph.run_job, executor_def=in_process_executor,
         description=f"Runs the whole {kind.name} study {study.name} as `benchmark-assets run` does "
                     "(Launchpad -> Launch run; the config selects subjects, tiers, --force).",
         tags={STUDY_TAG: study.name})
    def run_study_job():
        run_whole_study()

    return run_study_job
