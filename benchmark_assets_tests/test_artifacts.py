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
