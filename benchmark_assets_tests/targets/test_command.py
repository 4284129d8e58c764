"""The command target, with real subprocesses: placeholders, metrics grammar, failures as data."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark_assets.targets.command import CommandError, CommandSpec, run_command_trial, validate_command
from benchmark_assets_tests.conftest import proc_status


def script(tmp_path, body: str, name: str = "command.py") -> list[str]:
    """A temporary Python script run by this interpreter (its code may use braces freely)."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def run(argv, *, seed=7, params=None, **spec_options):
    return run_command_trial(CommandSpec(tuple(argv), **spec_options), seed=seed, params=params or {})


def escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


WRITE_ARGUMENT_TO_OUTPUT = """
    import sys
    with open(sys.argv[2], "w") as handle:
        handle.write(sys.argv[1])
"""


def write_document(tmp_path, text: str):
    """Run a command that writes ``text`` to {output}; the braces travel as escaped literals."""
    return run([*script(tmp_path, WRITE_ARGUMENT_TO_OUTPUT), escape(text), "{output}"])


# --- success --------------------------------------------------------------------------------------


def test_metrics_written_to_the_output_file_are_read(tmp_path):
    trial = write_document(tmp_path, json.dumps({"final_loss": 0.25, "steps_done": 300}))
    assert trial.status == "ok" and trial.error == "" and trial.exit_code == 0
    assert trial.scalars == {"final_loss": 0.25, "steps_done": 300.0}
    assert trial.curves == {}
    assert trial.argv[0] == sys.executable and trial.argv[-1].endswith("metrics.json")
    assert trial.duration_seconds > 0


def test_last_json_object_line_of_stdout_is_read_when_no_file_is_written(tmp_path):
    argv = script(tmp_path, """
        import json
        print("epoch 1 ...")
        print(json.dumps({"loss": 9.0}))
        print("[1, 2, 3]")
        print(json.dumps({"loss": 0.5, "accuracy": 0.9}))
        print("done")
    """)
    trial = run(argv)
    assert trial.status == "ok", trial.error
    assert trial.scalars == {"loss": 0.5, "accuracy": 0.9}


def test_output_file_wins_over_stdout_in_auto_mode(tmp_path):
    argv = script(tmp_path, """
        import json, sys
        print(json.dumps({"source": 1}))
        open(sys.argv[1], "w").write(json.dumps({"source": 2}))
    """)
    assert run([*argv, "{output}"]).scalars == {"source": 2.0}
    assert run([*argv, "{output}"], metrics_from="stdout").scalars == {"source": 1.0}


def test_file_mode_ignores_stdout(tmp_path):
    argv = script(tmp_path, 'import sys\nprint(\'{"loss": 1}\')\n')
    trial = run([*argv, "{output}"], metrics_from="file")
    assert trial.status == "failed"
    assert "reported no metrics" in trial.error and "{output}" in trial.error


CURVE_FORMS = {
    "steps_and_values": ({"loss": {"steps": [0, 10, 20], "values": [3.0, 2.0, 1.5]}}, [0, 10, 20]),
    "list_of_numbers": ({"loss": [3.0, 2.0, 1.5]}, [0, 1, 2]),
    "list_of_pairs": ({"loss": [[0, 3.0], [10, 2.0], [20, 1.5]]}, [0, 10, 20]),
    "nested": ({"curves": {"loss": [[0, 3.0], [10, 2.0], [20, 1.5]]}, "metrics": {"final": 1.5}}, [0, 10, 20]),
}


@pytest.mark.parametrize("form", CURVE_FORMS)
def test_every_accepted_curve_form_is_read(tmp_path, form):
    document, steps = CURVE_FORMS[form]
    trial = write_document(tmp_path, json.dumps(document))
    assert trial.status == "ok", trial.error
    curve = trial.curves["loss"]
    np.testing.assert_array_equal(curve.steps, steps)
    np.testing.assert_array_equal(curve.values, [3.0, 2.0, 1.5])
    assert curve.values.dtype == np.float64 and not curve.values.flags.writeable
    assert trial.scalars == ({"final": 1.5} if form == "nested" else {})


def test_scalars_and_curves_mix_in_the_flat_form(tmp_path):
    trial = write_document(tmp_path, json.dumps({"final_loss": 1.5, "loss": [3.0, 1.5]}))
    assert trial.scalars == {"final_loss": 1.5}
    assert list(trial.curves) == ["loss"]


# --- placeholders ---------------------------------------------------------------------------------


ECHO_ARGUMENTS = """
    import json, os, sys
    open(sys.argv[1], "w").write(json.dumps({"argc": len(sys.argv) - 2}))
    open(os.path.join(os.path.dirname(__file__), "args.json"), "w").write(json.dumps(sys.argv[2:]))
"""


def echoed(tmp_path) -> list[str]:
    """The arguments after {output} that the ECHO_ARGUMENTS script received."""
    return json.loads((tmp_path / "args.json").read_text())


def test_seed_parameters_python_and_workdir_are_substituted(tmp_path):
    workdir = tmp_path / "trial"
    argv = [*script(tmp_path, ECHO_ARGUMENTS), "{output}", "--seed", "{seed}", "--lr={lr}", "{steps}",
            "{nesterov}", "{optimizer}", "{python}", "{workdir}", "{{literal}}", "x{lr}y{seed}"]
    params = {"lr": 0.1, "steps": 300.0, "nesterov": True, "optimizer": "adam w"}
    trial = run_command_trial(CommandSpec(tuple(argv)), seed=1072, params=params, workdir=workdir)
    assert trial.status == "ok", trial.error
    assert echoed(tmp_path) == ["--seed", "1072", "--lr=0.1", "300", "true", "adam w", sys.executable,
                             str(workdir), "{literal}", "x0.1y1072"]
    assert trial.argv[2] == str(workdir / "metrics.json")
    assert (workdir / "metrics.json").exists()  # a caller's workdir is kept


def test_shell_metacharacters_in_a_value_arrive_as_one_literal_argument(tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("still here")
    value = f"1; rm -rf {canary} && echo $HOME `whoami` | cat > {tmp_path}/pwned \"'"
    trial = run([*script(tmp_path, ECHO_ARGUMENTS), "{output}", "{name}"], params={"name": value})
    assert trial.status == "ok", trial.error
    assert trial.scalars == {"argc": 1.0}
    assert echoed(tmp_path) == [value]
    assert canary.read_text() == "still here" and not (tmp_path / "pwned").exists()


def test_a_reused_workdir_never_reads_an_earlier_trials_metrics(tmp_path):
    workdir = tmp_path / "trial"
    workdir.mkdir()
    (workdir / "metrics.json").write_text('{"loss": 1}')
    trial = run_command_trial(CommandSpec((sys.executable, "-c", "pass", "{output}")), seed=0, params={},
                              workdir=workdir)
    assert trial.status == "failed" and "reported no metrics" in trial.error


# --- failures are data ----------------------------------------------------------------------------


def test_non_zero_exit_keeps_the_exit_code_and_the_stderr_tail(tmp_path):
    argv = script(tmp_path, """
        import sys
        sys.stderr.write("x" * 5000 + "CUDA out of memory")
        sys.exit(3)
    """)
    trial = run(argv)
    assert trial.status == "failed" and trial.exit_code == 3
    assert "exited with code 3" in trial.error and "CUDA out of memory" in trial.error
    assert len(trial.stderr_tail) == 2000 and trial.stderr_tail.endswith("CUDA out of memory")
    assert trial.scalars == {} and trial.curves == {}


def test_a_crash_by_signal_names_the_signal(tmp_path):
    trial = run(script(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"))
    assert trial.status == "failed" and trial.exit_code == -9
    assert "SIGKILL" in trial.error


def test_timeout_kills_the_whole_process_group_quickly(tmp_path):
    pid_file = tmp_path / "child.pid"
    argv = script(tmp_path, f"""
        import subprocess, time
        child = subprocess.Popen(["sleep", "30"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(30)
    """)
    started = time.monotonic()
    trial = run(argv, timeout_seconds=1)
    assert time.monotonic() - started < 5
    assert trial.status == "failed" and trial.exit_code is None
    assert "timed out after 1 s" in trial.error and "timeout_seconds" in trial.error
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the command's child survived the timeout"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"  # a zombie is dead, waiting for its parent
    except FileNotFoundError:
        return False


def test_missing_executable_is_named_with_the_fix(tmp_path):
    trial = run(["train-that-does-not-exist", "--seed", "{seed}"])
    assert trial.status == "failed" and trial.exit_code is None
    assert "'train-that-does-not-exist' not found" in trial.error and "{python}" in trial.error
    assert trial.argv == ("train-that-does-not-exist", "--seed", "7")


def test_a_file_that_is_not_executable_is_a_failed_trial(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("print('hi')\n")
    trial = run([str(path)])
    assert trial.status == "failed" and "cannot start" in trial.error and "{python}" in trial.error


def test_missing_working_folder_is_a_failed_trial(tmp_path):
    trial = run([sys.executable, "-c", "pass"], cwd=str(tmp_path / "nowhere"))
    assert trial.status == "failed" and "does not exist" in trial.error


def test_no_metrics_at_all_is_a_failed_trial(tmp_path):
    trial = run([sys.executable, "-c", "print('training done')"])
    assert trial.status == "failed" and trial.exit_code == 0
    assert "reported no metrics" in trial.error


def test_invalid_json_in_the_output_file_says_where(tmp_path):
    trial = write_document(tmp_path, '{"loss": 0.5,\n "accuracy": }')
    assert trial.status == "failed"
    assert "metrics file metrics.json is not valid JSON" in trial.error and "line 2 column" in trial.error


def test_a_broken_json_line_on_stdout_says_which_line(tmp_path):
    trial = run(script(tmp_path, 'print("starting")\nprint(\'{"loss": 0.5,\')\n'))
    assert trial.status == "failed" and "stdout line 2" in trial.error


@pytest.mark.parametrize(
    "document, expected",
    [
        ('{"loss": {"steps": [0, 1, 2], "values": [1.0, NaN, 0.5]}}', "curve 'loss' value at step 1 is nan"),
        ('{"loss": {"steps": [0, 1, 2], "values": [1.0, 0.5]}}', "curve 'loss' has 3 steps but 2 values"),
        ('{"loss": [[0, 1.0], [0, 0.5]]}', "curve 'loss': steps must be strictly increasing"),
        ('{"loss": []}', "curve 'loss' has no points"),
        ('{"accuracy": "0.9"}', "metric 'accuracy' is \"0.9\", expected a number"),
        ('{"converged": true}', "metric 'converged' is true, expected a number"),
        ('{"loss": Infinity}', "metric 'loss' is inf, expected a finite number"),
        ('{"loss": {"mean": 1}}', "curve 'loss' is dict"),
        ("{}", "non-empty JSON object"),
        ("[1, 2]", "non-empty JSON object"),
        ('{"metrics": {"loss": 1}, "curves": {"loss": [1]}}', "'loss' is both a metric and a curve"),
    ],
)
def test_invalid_metrics_name_the_metric(tmp_path, document, expected):
    trial = write_document(tmp_path, document)
    assert trial.status == "failed" and trial.exit_code == 0
    assert trial.error.startswith("metrics file metrics.json: ")
    assert expected in trial.error


# --- spec validation ------------------------------------------------------------------------------


TRAIN = ("python", "train.py", "--seed", "{seed}", "--lr", "{lrr}", "--out", "{output}")


@pytest.mark.parametrize(
    "spec, params, expected",
    [
        (CommandSpec(TRAIN), ["lr"], "command argument 5 '{lrr}': unknown placeholder {lrr}; did you mean {lr}? "
                                     "use one of {seed}, {output}, {python}, {workdir}, {lr}"),
        (CommandSpec(()), [], "command is empty"),
        (CommandSpec(("train", "--config={a: 1")), [], "argument 1 '--config={a: 1': unmatched or malformed '{'"),
        (CommandSpec(("train", "a}b")), [], "unmatched '}' at character 1"),
        (CommandSpec(("train", "{}")), [], "malformed '{'"),
        (CommandSpec(("train",), timeout_seconds=0), [], "timeout_seconds is 0; give a positive number"),
        (CommandSpec(("train",), timeout_seconds=-5), [], "timeout_seconds is -5"),
        (CommandSpec(("train",), metrics_from="csv"), [], "metrics_from is 'csv'; use one of auto, file, stdout"),
        (CommandSpec(("train",), metrics_from="file"), [], "no {output} argument"),
        (CommandSpec(("train", "{lr}")), ["lr", "momentum"], "parameter 'momentum' is not passed to the command"),
        (CommandSpec(("train", "{seed}")), ["seed"], "parameter 'seed' has the name of the built-in placeholder"),
        (CommandSpec(("train", 5)), [], "command argument 1 is 5; every argument must be text"),
    ],
)
def test_validate_command_rejects_what_cannot_run(spec, params, expected):
    with pytest.raises(CommandError) as caught:
        validate_command(spec, params)
    assert expected in str(caught.value)


def test_validate_command_accepts_a_good_spec():
    validate_command(CommandSpec(("{python}", "-m", "train", "--lr={lr}", "{{x}}", "--out", "{output}"),
                                 metrics_from="file"), ["lr"])


def test_running_an_invalid_spec_raises_before_starting_anything():
    with pytest.raises(CommandError, match="unknown placeholder"):
        run_command_trial(CommandSpec(("python", "{lr}")), seed=0, params={"learning_rate": 0.1})


# --- provenance -----------------------------------------------------------------------------------


def test_git_commit_of_the_working_folder_is_recorded(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text('print(\'{"loss": 1}\')\n')
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for command in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "train"]):
        subprocess.run([*git, *command], cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    head = head.stdout.strip()
    trial = run(["{python}", "train.py"], cwd=str(repo))
    assert trial.status == "ok", trial.error
    assert len(head) == 40 and trial.git_commit == head

    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "train.py").write_text('print(\'{"loss": 1}\')\n')
    assert run(["{python}", "train.py"], cwd=str(outside)).git_commit == "unknown"


def test_a_process_that_escaped_the_trials_session_is_killed_when_the_trial_ends(tmp_path):
    pid_file = tmp_path / "escaped.pid"
    argv = script(tmp_path, f"""
        import os, subprocess, sys, time
        # A grandchild in a session of its own: out of reach of the trial's process group.
        code = "import os, sys, time; os.setsid(); open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
        subprocess.Popen([sys.executable, "-c", code, {str(pid_file)!r}])
        while not os.path.exists({str(pid_file)!r}) or not open({str(pid_file)!r}).read():
            time.sleep(0.01)  # until it has left the session
        print('{{"score": 1.0}}')
    """)
    trial = run(argv)
    assert trial.status == "ok", trial.error
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and "State:\tZ" not in proc_status(pid):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}") or "State:\tZ" in proc_status(pid)


def test_what_a_dead_run_left_behind_is_cleaned_up_by_the_next_one(tmp_path):
    import tempfile

    from benchmark_assets.processes import TEMP_PREFIX, TRIAL_MARKER, clean_up_after_dead_runners, process_alive

    # A runner that dies by kill -9 only once its trial process and folder exist: until then no other
    # test's run (they run in parallel, and each cleans up after dead runners) may take them.
    gone = subprocess.Popen(["sleep", "120"])
    orphan = subprocess.Popen(["sleep", "120"], env={**os.environ, TRIAL_MARKER: f"{gone.pid}:trial"})
    # Popen returns once exec has begun, but the kernel sets the new image's environment a moment
    # later (/proc/<pid>/environ reads empty until then; on a loaded CI machine that moment showed).
    environ = Path(f"/proc/{orphan.pid}/environ")
    for _ in range(1000):
        if TRIAL_MARKER.encode() in environ.read_bytes():
            break
        time.sleep(0.01)
    folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{gone.pid}-"))
    mine = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))  # a live runner's: kept
    gone.kill()
    gone.wait()
    assert not process_alive(gone.pid)
    try:
        cleaned = clean_up_after_dead_runners()
        assert orphan.wait(timeout=10) == -9
        said = f"killed trial process {orphan.pid} left by a dead run (pid {gone.pid})"
        # Another test's run (they run in parallel, and every run cleans up) may have been first in
        # the moment since the runner died: then the orphan is gone all the same, and it said so.
        assert said in cleaned or not any(line.startswith("killed") and f"(pid {gone.pid})" in line
                                          for line in cleaned), cleaned
        assert not folder.exists(), cleaned
        assert mine.exists(), cleaned
    finally:
        orphan.kill()
        if mine.exists():
            mine.rmdir()
