"""Property: whatever a user types, every command answers with an exit code from the documented
set (0 done, 2 a mistake in what was passed, 3 the input failed part-way), never a traceback, and
a command that fails leaves nothing at its output paths. Hypothesis draws the option values
(good and bad) and the inputs (a clip, a photo, broken, empty and missing files, folders)."""

import shutil

import cv2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamgan.cli import main
from tests.streamgan.helpers import textured_frames, tiny_resnet, write_clip

EXIT_CODES = {0, 2, 3}
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    files = {"gen": tiny_resnet(d / "g.pth"), "clip": write_clip(d / "clip.mp4", textured_frames(6, 32, 48),
                                                                 audio_streams=1),
             "photo": d / "photo.png", "empty": d / "empty.mp4", "text": d / "text.mp4", "missing": d / "nope.mp4",
             "folder": d / "folder", "notckpt": d / "weights.pth", "existing": d / "existing.mp4"}
    cv2.imwrite(str(files["photo"]), textured_frames(1, 30, 42)[0])
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a video\n" * 20)
    files["folder"].mkdir()
    files["notckpt"].write_bytes(b"\x80\x02garbage")
    files["existing"].write_bytes(b"keep me")
    return d, files


def _outputs(d):
    return st.sampled_from(["new.mp4", "new.mkv", "new.png", "new_dir", "nowhere/x.mp4", "existing.mp4", "noext",
                            "folder", "new.txt", "clip.mp4"]).map(lambda name: str(d / name))


NUMBERS = st.one_of(st.integers(-5, 70).map(str), st.integers(-5, 70).map(str), st.integers(-5, 70).map(str),
                    st.sampled_from(["0", "1.5", "0.5", "0.99", "-0.5", "nan", "x", "1e9", ""]))
COMMON = {
    "--device": st.sampled_from(["cpu", "cuda", "cuda:7", "foo", "cpu:1"]),
    "--backend": st.sampled_from(["auto", "torch", "openvino", "onnxruntime", "tensorrt"]),
    "--precision": st.sampled_from(["auto", "fp32", "fp16", "bf16", "int8"]),
    "--range": st.sampled_from(["-1,1", "0,1", "1,0", "a,b", "1..2"]),
    "--tile": NUMBERS, "--batch": NUMBERS, "--overlap": NUMBERS, "--thumbnail": NUMBERS,
    "--norm-stats": st.sampled_from(["tile", "thumbnail", "exact", "global"]),
    "--const": st.sampled_from(["gain=1", "gain", "gain=x", "=1"]),
}
RUN = {
    **COMMON,
    "--codec": st.sampled_from(["libx264", "libx265", "mpeg4", "libx264rgb", "bogus", "aac", "ffv1"]),
    "--crf": NUMBERS, "--preset": st.sampled_from(["medium", "ultrafast", "bogus", "placebo", "7"]),
    "--pix-fmt": st.sampled_from(["yuv420p", "yuv444p", "rgb24", "bogus", "yuv420p10le", "gray"]),
    "--start": NUMBERS, "--duration": NUMBERS, "--temporal": st.sampled_from(["off", "ema", "flow", "wobble"]),
    "--temporal-strength": NUMBERS, "--stats-ema": NUMBERS,
    "--side-by-side": st.just(None), "--keep-partial": st.just(None), "--overwrite": st.just(None),
}


def _options(pool: dict, max_size: int = 4):
    def flat(chosen):
        out = []
        for flag, value in chosen:
            out += [flag] if value is None else [flag, value]
        return out
    return st.lists(st.sampled_from(sorted(pool)).flatmap(lambda f: pool[f].map(lambda v, f=f: (f, v))),
                    max_size=max_size).map(flat)


def _check(argv, paths, d, capsys, before):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse: usage and one error line
        rc = exc.code
    err = capsys.readouterr().err
    assert rc in EXIT_CODES and "Traceback" not in err, (argv, rc, err[-3000:])
    if rc != 0:
        for p in paths:
            assert p.exists() == (p in before), (argv, p, err)
        assert (d / "existing.mp4").read_bytes() == b"keep me", argv
    assert not [p for p in d.rglob("*.partial*")], (argv, err)
    for p in paths:  # leave the world as it was for the next example
        if p not in before and p.exists():
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def _existing(d):
    return {p for p in d.rglob("*")}


@SETTINGS
@given(data=st.data())
def test_run_never_tracebacks(world, capsys, data):
    d, f = world
    inp = data.draw(st.sampled_from(["clip", "clip", "clip", "photo", "photo", "empty", "text", "missing", "folder"]),
                    label="input")
    out = data.draw(_outputs(d), label="output")
    engine = data.draw(st.sampled_from(["gen"] * 6 + ["notckpt", "missing", "photo"]), label="engine")
    argv = ["run", "--engine", str(f[engine]), "--input", str(f[inp]), "--output", out, "--no-progress",
            *data.draw(_options(RUN), label="options")]
    from pathlib import Path
    _check(argv, [Path(out), Path(out).with_suffix(".json")], d, capsys, _existing(d))


@SETTINGS
@given(data=st.data())
def test_other_commands_never_traceback(world, capsys, data):
    from pathlib import Path
    d, f = world
    out = data.draw(_outputs(d), label="output")
    command = data.draw(st.sampled_from(["info", "build", "bench", "demo", "eval-temporal", "webcam"]),
                        label="command")
    src = str(f[data.draw(st.sampled_from(["gen", "notckpt", "missing", "photo", "clip"]), label="source")])
    plot = data.draw(st.sampled_from(["p.png", "p.txt", "nowhere/p.png", "existing.mp4"]), label="plot")
    if command == "info":
        argv = ["info", src] + data.draw(st.sampled_from([[], ["--json"]]))
        outs = []
    elif command == "build":
        target = data.draw(st.sampled_from(["g.onnx", "g.xml", "g.txt", "nowhere/g.onnx", "existing.mp4"]))
        argv = ["build", src, "--out", str(d / target), *data.draw(_options(
            {"--shapes": st.sampled_from(["32x32", "x", "30x48", "1x1:2x2:3x3"]), "--static": st.just(None),
             "--fp16": st.just(None), "--tile": NUMBERS, "--batch": NUMBERS, "--range": COMMON["--range"],
             "--device": COMMON["--device"], "--no-validate": st.just(None)}, 3))]
        outs = [d / target, (d / target).with_suffix(".bin")]
    elif command == "bench":
        argv = ["bench", "--engine", src, "--frames", "1", "--warmup", "1", "--plot", str(d / plot), *data.draw(
            _options({**COMMON, "--size": st.sampled_from(["48x32", "0x10", "big", "32x48x2"]),
                      "--frames": NUMBERS, "--input": st.sampled_from([str(f["clip"]), str(f["text"]),
                                                                       str(f["missing"])])}, 3))]
        outs = [d / plot]
    elif command == "demo":
        argv = ["demo", "--output", out, "--seconds", data.draw(st.sampled_from(["0.2", "0", "-1", "x"])),
                "--no-progress", "--temporal", "off"]
        outs = [Path(out), Path(out).with_suffix(".png"), Path(out).with_name(Path(out).stem + "_input.mp4")]
    elif command == "eval-temporal":
        argv = ["eval-temporal", "--input", str(f["clip"]), "--output", src, "--plot", str(d / plot)]
        outs = [d / plot]
    else:
        argv = ["webcam", "--engine", str(f["gen"]), "--camera", data.draw(st.sampled_from(
            [str(f["clip"]), str(f["missing"]), "/dev/video99", str(f["text"])])), "--no-window", "--frames", "2",
            *data.draw(_options({"--size": st.sampled_from(["48x32", "0x10", "big"]), "--fps": NUMBERS,
                                 "--temporal-strength": NUMBERS, "--record": st.just(out)}, 2))]
        outs = [Path(out)]
    _check(argv, outs, d, capsys, _existing(d))


def test_every_option_says_what_it_does_and_its_default():
    """Each option of each command has help text, and one with a default says it (the text, not
    argparse's repr: 'default 18 for x264')."""
    import argparse

    from streamgan.cli import build_parser
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = []
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[0] if action.option_strings else action.dest
            if not action.help:
                missing.append(f"{name} {flag}: no help")
            elif action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings \
                    and not isinstance(action, argparse._StoreFalseAction) and "default" not in action.help.lower():
                missing.append(f"{name} {flag}: default {action.default!r} not said")
    assert not missing, "\n".join(missing)


def test_the_command_leaves_once_its_threads_and_exit_handlers_are_done(world, tmp_path):
    """`streamgan` ends without unloading its native libraries (streamgan.cli._leave), but only
    after what any exit does: a thread still writing is joined, exit handlers run, output is
    flushed, and the exit code is the command's; under a profiler it returns as usual."""
    import subprocess
    import sys
    d, files = world
    script = ("import atexit, sys, threading, time\n"
              "from pathlib import Path\n"
              f"out = Path({str(tmp_path)!r})\n"
              "atexit.register(lambda: (out / 'handler').write_text('ran'))\n"
              "import streamgan.cli as cli\n"
              "command = cli._call\n"
              "def then_a_thread(*a):  # still writing when the command is done\n"
              "    code = command(*a)\n"
              "    threading.Thread(target=lambda: (time.sleep(0.5), (out / 'thread').write_text('done'))).start()\n"
              "    return code\n"
              "cli._call = then_a_thread\n"
              "sys.argv = ['streamgan', 'info', sys.argv[1]]\n"
              "cli.main()\n"
              "raise SystemExit('main returned')\n")
    ok = subprocess.run([sys.executable, "-c", script, str(files["gen"])], capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
    assert (tmp_path / "handler").read_text() == "ran" and (tmp_path / "thread").read_text() == "done"
    bad = subprocess.run([sys.executable, "-c", script, str(files["notckpt"])], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("streamgan: error:"), bad.stderr
    profiled = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(tmp_path / "run.prof"), "-m", "streamgan",
                               "info", str(files["gen"])], capture_output=True, text=True, timeout=300)
    assert profiled.returncode == 0 and (tmp_path / "run.prof").stat().st_size > 0  # a profiler gets its results
