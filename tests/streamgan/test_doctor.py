"""``streamgan doctor``: the facts are this machine's, every engine path it has runs in the
self-test and gives the model's own picture (floors from the precision), a failing path is a
finding and not the end of the report."""

import json

import av
import torch

from streamgan.cli import doctor, main

FLOOR = {"fp32": 50.0, "bf16": 40.0, "fp16": 40.0, "int8": 40.0}  # int8: the bundled model, 45.5 dB measured


def test_doctor_reports_this_machine_and_runs_every_path(tmp_path, capsys):
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    d = json.loads(out.read_text())
    f, tests = d["facts"], d["selftest"]
    assert f["torch"]["version"] == torch.__version__ and f["media"]["pyav"] == av.__version__
    assert (f["torch"]["cuda"] is None) == (not torch.cuda.is_available())
    assert "libx264" in f["media"]["encoders"] and f["cpu"]["cores"] >= 1
    assert [t["path"] for t in tests] == [label for label, _ in doctor.candidates(f)]
    for t in tests:
        assert "failed" not in t, t
        assert t["ms"] > 0 and t["db"] >= FLOOR[t["precision"]], t
        assert t["path"] in text
    assert "self-test" in text and f["torch"]["version"] in text


def test_a_failing_path_is_reported_and_the_rest_run(monkeypatch, capsys):
    real = doctor.candidates
    monkeypatch.setattr(doctor, "candidates", lambda f: [("broken", dict(backend="nonsense"))] + real(f)[:1])
    assert main(["doctor", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    broken, ok = d["selftest"]
    assert broken["path"] == "broken" and "failed" in broken and "ms" not in broken
    assert ok["db"] >= FLOOR[ok["precision"]]


def test_facts_only(capsys):
    assert main(["doctor", "--no-selftest"]) == 0
    text = capsys.readouterr().out
    assert "torch" in text and "self-test" not in text
