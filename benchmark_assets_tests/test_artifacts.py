"""Artifact paths come only from sanitised labels: no study or sweep value can write elsewhere."""
from hypothesis import given
from hypothesis import strategies as st

from benchmark_assets.artifacts import artifacts_dir, safe_label


@given(st.text(max_size=200))
def test_a_label_is_one_plain_file_name_whatever_the_text(text):
    label = safe_label(text)
    assert label and "/" not in label and "\\" not in label and label not in {".", ".."}
    assert not label.startswith(".") and len(label) <= 120


def test_hostile_names_stay_inside_the_artifacts_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_ASSETS_ARTIFACTS", str(tmp_path / "artifacts"))
    for name in ("../../etc", "/etc/passwd", "a/../../b", "..", "concurrency=8,input_tokens=128"):
        folder = artifacts_dir(name)
        assert (tmp_path / "artifacts").resolve() in folder.parents
    assert safe_label("concurrency=8,input_tokens=128") == "concurrency_8_input_tokens_128"


def test_each_run_has_its_own_folder_and_latest_follows_the_newest(tmp_path, monkeypatch):
    from benchmark_assets.artifacts import latest_dir, run_dir, write_files

    monkeypatch.setenv("BENCHMARK_ASSETS_ARTIFACTS", str(tmp_path / "artifacts"))
    first = run_dir("study", "run-1")
    write_files(first, {"report.md": "first"})
    second = run_dir("study", "run-2")
    write_files(second, {"report.md": "second"})
    assert first != second and (first / "report.md").read_text() == "first"  # the old run keeps its files
    assert (latest_dir("study") / "report.md").read_text() == "second"
    assert latest_dir("study").resolve() == second.resolve()
    assert sorted(p.name for p in (tmp_path / "artifacts" / "study").iterdir()) == ["latest", "run-1", "run-2"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_files(elsewhere, {"report.md": "x"})  # not a run folder: no latest link is made beside it
    assert not (tmp_path / "latest").exists()


def test_plots_are_embedded_small_and_still_readable(tmp_path):
    import base64
    import io
    import re

    from PIL import Image

    from benchmark_assets.artifacts import figure, png_markdown

    fig, axis = figure(10.0, 4.0)
    axis.plot(range(100), [i * i for i in range(100)])
    path = tmp_path / "curve.png"
    fig.savefig(path)
    text = png_markdown({"alpha: accept": path})
    assert text.startswith(f"**alpha: accept** (full size: `{path}`)")
    data = re.search(r"!\[alpha: accept\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "PNG" and image.width == 560 and image.height == 224
    assert len(data) < 40_000  # tens of kilobytes per plot in the event log


def test_an_event_inlines_plots_in_order_within_its_budget_and_names_the_rest(tmp_path):
    import re

    from benchmark_assets.artifacts import budgeted_markdown, figure

    paths = []
    for number in range(30):  # a study of thirty subjects
        fig, axis = figure(10.0, 4.0)
        axis.plot(range(50), [(i * (number + 1)) % 17 for i in range(50)])
        paths.append((f"c{number}: reject", tmp_path / f"c{number}.png"))
        fig.savefig(paths[-1][1])
    text = budgeted_markdown(paths, budget=100_000)
    inlined = re.findall(r"!\[(c\d+): reject\]\(data:image/png;base64,", text)
    assert 1 <= len(inlined) < 30 and len(text) < 102_000  # bounded, whatever the number of subjects
    assert inlined == [f"c{n}" for n in range(len(inlined))]  # the first given first
    assert f"**{30 - len(inlined)} more plots**" in text
    assert all(f"- c{n}: reject: `{tmp_path / f'c{n}.png'}`" in text for n in range(len(inlined), 30))


def _square_and_pid(x):
    import os

    return x * x, os.getpid()


def test_figures_are_drawn_on_worker_processes_in_the_order_given():
    import os

    from benchmark_assets.artifacts import in_parallel

    results = in_parallel(_square_and_pid, list(range(12)))
    assert [value for value, _ in results] == [x * x for x in range(12)]
    pids = {pid for _, pid in results}
    if (os.cpu_count() or 1) > 1:
        assert os.getpid() not in pids and len(pids) >= 1  # workers, not this process
    assert [v for v, _ in in_parallel(_square_and_pid, [3, 1])] == [9, 1]  # few jobs: drawn here, in order


def test_latest_moves_only_when_a_run_has_written_its_report(tmp_path, monkeypatch):
    from benchmark_assets.artifacts import latest_dir, run_dir, write_files

    monkeypatch.setenv("BENCHMARK_ASSETS_ARTIFACTS", str(tmp_path / "artifacts"))
    done = run_dir("study", "run-1")
    write_files(done, {"report.md": "one"})
    failed = run_dir("study", "run-2")  # a run that drew a plot, then failed before its report
    write_files(failed, {"variance.csv": "x"})
    assert (latest_dir("study") / "report.md").read_text() == "one"


def test_with_an_artifacts_server_plots_and_files_are_links_the_browser_opens(tmp_path, monkeypatch):
    from benchmark_assets.artifacts import artifact_url, budgeted_markdown, png_markdown, run_dir
    from benchmark_assets.defs.metadata import dagster_metadata

    monkeypatch.setenv("BENCHMARK_ASSETS_ARTIFACTS", str(tmp_path / "artifacts"))
    folder = run_dir("my study", "run 1")
    plot = folder / "plots" / "a b.png"
    plot.parent.mkdir(parents=True)
    plot.write_bytes(b"png")
    assert artifact_url(plot) is None  # no server: the event keeps a small copy, the path as text
    monkeypatch.setenv("BENCHMARK_ASSETS_ARTIFACTS_URL", "http://127.0.0.1:3001/")
    url = "http://127.0.0.1:3001/my_study/run_1/plots/a%20b.png"
    assert artifact_url(plot) == url
    assert artifact_url(tmp_path / "elsewhere.png") is None  # only what the server serves
    shown = png_markdown({"alpha": plot})
    assert shown.startswith(f"**alpha** ([open full size]({url}))\n\n![alpha]({url})\n\n[//]: # (")
    assert len(shown) == 1000  # long enough for the UI to open it in its dialog, not clip it in place
    many = budgeted_markdown([(str(i), plot) for i in range(500)])
    assert many.count("![") == 500 and len(many) < 200_000  # links, not pictures: all of them fit
    metadata = dagster_metadata({"file_plot": plot, "artifacts": folder})
    assert metadata["file_plot"].url == url and metadata["artifacts"].url == "http://127.0.0.1:3001/my_study/run_1"
