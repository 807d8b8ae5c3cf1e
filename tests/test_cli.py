"""Console scripts: bad input is one line `PROG: error: ...` on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import configparser
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    OFFICIAL_CHECKPOINT,
    body,
    per_frame,
    pku_raw,
    save_tiny_checkpoint,
    save_tiny_classifier,
    synthetic_recording,
    write_skeleton_file,
)

from mamp_hub import MampModel
from mamp_hub.data.untrimmed import UntrimmedConfig, write_untrimmed_pku
from mamp_hub.tools.cli import console_script

ROOT = Path(__file__).resolve().parents[1]

# What each script is given, in {tmp}: (console script, its module, arguments, what the error must name).
BAD_INPUTS = {
    "convert-missing-checkpoint": (
        "mamp-convert",
        "mamp_hub.tools.convert",
        ["{tmp}/no-such-checkpoint.pth", "{tmp}/out"],
        "no-such-checkpoint.pth",
    ),
    "convert-text-checkpoint": (
        "mamp-convert",
        "mamp_hub.tools.convert",
        ["{tmp}/notes.txt", "{tmp}/out"],
        "notes.txt",
    ),
    "convert-text-id2label": (
        "mamp-convert",
        "mamp_hub.tools.convert",
        ["{tmp}/no-such-checkpoint.pth", "{tmp}/out", "--id2label", "{tmp}/notes.txt"],
        "notes.txt",
    ),
    "prepare-ntu-missing-folder": (
        "mamp-prepare-ntu",
        "mamp_hub.data.prepare_ntu",
        ["--raw-dir", "{tmp}/no-such-folder", "--output-dir", "{tmp}/out"],
        "no-such-folder",
    ),
    "prepare-pku-missing-inputs": (
        "mamp-prepare-pku",
        "mamp_hub.data.prepare_pku",
        ["--raw-dir", "{tmp}/no-such-folder", "--output-dir", "{tmp}/out", "--cross-subject", "{tmp}/no-such.txt"],
        "no-such",  # the folder or the split file, whichever the script checks first
    ),
    "export-onnx-missing-folder": (
        "mamp-export-onnx",
        "mamp_hub.tools.onnx_export",
        ["{tmp}/no-such-model", "{tmp}/out.npz"],
        "no-such-model",
    ),
    "release-missing-source": (
        "mamp-release",
        "mamp_hub.tools.release",
        ["{tmp}/no-such-folder", "--output-dir", "{tmp}/out", "--org", "someone"],
        "no-such-folder",
    ),
    "recognize-missing-recording": (
        "mamp-recognize",
        "mamp_hub.tools.recognize",
        ["{tmp}/no-such-recording.npy", "--model", "{tmp}/no-such-model"],
        "no-such-recording.npy",
    ),
    "synthetic-negative-count": (
        "mamp-synthetic",
        "mamp_hub.data.synthetic",
        ["--output", "{tmp}/out.npz", "--num-samples", "-3"],
        "-3",
    ),
}
CASES = [pytest.param(*case, id=name) for name, case in BAD_INPUTS.items()]
MODULES = {script: module for script, module, *_ in BAD_INPUTS.values()}


def _arguments(arguments: list[str], tmp_path: Path) -> list[str]:
    (tmp_path / "notes.txt").write_text("not a checkpoint, not JSON\n")
    return [argument.format(tmp=tmp_path) for argument in arguments]


def _assert_one_error_line(stderr: str, script: str, named: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"{script}: error: ")]
    assert len(errors) == 1, stderr
    assert stderr.endswith(errors[0] + "\n"), stderr  # nothing (a traceback, a second message) after it
    assert named in errors[0]


@pytest.mark.parametrize(("script", "module", "arguments", "named"), CASES)
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, monkeypatch, script, module, arguments, named):
    monkeypatch.delenv("MAMP_HUB_TRACEBACK", raising=False)
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(_arguments(arguments, tmp_path))
    assert exit_info.value.code == 2
    _assert_one_error_line(capsys.readouterr().err, script, named)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.npz").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("script", "module", "arguments", "named"), CASES)
def test_bad_input_from_the_command_line_is_one_error_line_and_exit_2(tmp_path, script, module, arguments, named):
    env = {k: v for k, v in os.environ.items() if k != "MAMP_HUB_TRACEBACK"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", module, *_arguments(arguments, tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    _assert_one_error_line(result.stderr, script, named)


def _declared_console_scripts() -> dict[str, str]:
    """setup.cfg's console scripts, name -> "module:function"."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


@pytest.mark.parametrize("script", sorted(_declared_console_scripts()))
def test_every_console_script_is_guarded(script):
    module, function = _declared_console_scripts()[script].split(":")
    main = getattr(importlib.import_module(module), function)
    guard = console_script(script)(lambda: None)  # every guarded main runs this same wrapper code
    assert main.__code__ is guard.__code__, f"{module}.{function} lacks @console_script({script!r})"


@pytest.mark.parametrize("script", sorted(MODULES))
def test_the_scripts_tested_here_are_the_declared_ones(script):
    assert _declared_console_scripts()[script] == f"{MODULES[script]}:main"


def test_what_a_main_returns_is_not_its_exit_status():
    """The launcher pip writes calls `sys.exit(main())`: a returned object would be exit status 1, printed."""
    assert console_script("prog")(lambda: {"written": "out.onnx"})() is None


def test_usage_errors_keep_argparse_s_message(capsys):
    from mamp_hub.tools.convert import main

    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    _assert_one_error_line(capsys.readouterr().err, "mamp-convert", "the following arguments are required")


def test_traceback_is_shown_on_request(tmp_path, monkeypatch):
    from mamp_hub.tools.convert import CheckpointError, main

    monkeypatch.setenv("MAMP_HUB_TRACEBACK", "1")
    with pytest.raises(CheckpointError, match=r"no-such-checkpoint.pth does not exist"):
        main([str(tmp_path / "no-such-checkpoint.pth"), str(tmp_path / "out")])


# ------------------------------------------------------------------------------------ every declared script, as run


def _ntu_raw(tmp: Path) -> Path:
    raw = tmp / "nturgb+d_skeletons"
    raw.mkdir()
    for name in ("S001C001P001R001A001", "S001C002P003R001A002"):  # a training and a test subject
        write_skeleton_file(raw / f"{name}.skeleton", per_frame(("1", body(20), 0)))
    return raw


def _pku_raw(tmp: Path) -> Path:
    frames = np.round(np.random.default_rng(0).normal(size=(100, 150)), 4)
    return pku_raw(tmp, {"0002-L": frames}, {"0002-L": "3,10,40,1\n"})


def _model_folder(tmp: Path) -> Path:
    return save_tiny_checkpoint(tmp / "model", MampModel)


def _release_source(tmp: Path) -> Path:
    checkpoint = tmp / "source" / "ntu60_xsub_joint" / "pretrain_mamp" / "checkpoint-399.pth"
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(OFFICIAL_CHECKPOINT, checkpoint)
    return tmp / "source"


def _recording(tmp: Path) -> Path:
    np.save(tmp / "recording.npy", synthetic_recording(clips=2))
    return tmp / "recording.npy"


def _untrimmed_folder(tmp: Path) -> Path:
    write_untrimmed_pku(tmp / "untrimmed", num_recordings=1, config=UntrimmedConfig(num_actions=(2, 2)))
    return tmp / "untrimmed"


# A small valid run of each console script: (arguments, given a folder to write inputs into; what it writes there).
VALID_RUNS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "mamp-convert": (lambda tmp: [str(OFFICIAL_CHECKPOINT), str(tmp / "out")], "out/config.json"),
    "mamp-export-onnx": (lambda tmp: [str(_model_folder(tmp)), str(tmp / "out.onnx")], "out.onnx"),
    "mamp-prepare-ntu": (lambda tmp: ["--raw-dir", str(_ntu_raw(tmp)), "--output-dir", str(tmp / "out")], "out"),
    "mamp-prepare-pku": (
        lambda tmp: [
            "--raw-dir",
            str(_pku_raw(tmp)),
            "--output-dir",
            str(tmp / "out"),
            "--cross-subject",
            str(tmp / "pku" / "cross-subject.txt"),
        ],
        "out/PKUv1_XSub.npz",
    ),
    "mamp-release": (
        lambda tmp: [str(_release_source(tmp)), "--output-dir", str(tmp / "out"), "--org", "someone"],
        "out/mamp-ntu60-xsub-pretrain/README.md",
    ),
    "mamp-synthetic": (lambda tmp: ["--output", str(tmp / "out.npz"), "--num-samples", "20"], "out.npz"),
    "mamp-recognize": (
        lambda tmp: [
            str(_recording(tmp)),
            "--model",
            str(save_tiny_classifier(tmp / "model")),
            "--out",
            str(tmp / "out.json"),
        ],
        "out.json",
    ),
    "mamp-evaluate-untrimmed": (
        lambda tmp: [
            str(_untrimmed_folder(tmp)),
            "--model",
            str(save_tiny_classifier(tmp / "model")),
            "--out",
            str(tmp / "out.json"),
        ],
        "out.json",
    ),
    "mamp-synthetic-untrimmed": (
        lambda tmp: ["--output-dir", str(tmp / "out"), "--num-recordings", "1"],
        "out/label",
    ),
}


def _run_as_installed(script: str, arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` as the launcher that pip writes for a console script does: `sys.exit(main())`, so that whatever
    main returns becomes the exit status, as it does for a user."""
    module, function = _declared_console_scripts()[script].split(":")
    launcher = f"import sys; from {module} import {function}; sys.exit({function}())"
    env = {k: v for k, v in os.environ.items() if k != "MAMP_HUB_TRACEBACK"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", launcher, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_every_declared_console_script_has_a_valid_run():
    missing = sorted(set(_declared_console_scripts()) - set(VALID_RUNS))
    assert not missing, f"add a small valid run of {missing} to VALID_RUNS"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(_declared_console_scripts()))
def test_every_console_script_exits_0_on_a_valid_run_and_2_on_a_bad_argument(tmp_path, script):
    """Each script of setup.cfg, run as installed: a bad argument is one error line, exit 2 and nothing written; a
    small valid run exits 0 (mamp-export-onnx wrote its file and then exited 1, its result object as the status)."""
    make_arguments, writes = VALID_RUNS[script]
    arguments = make_arguments(tmp_path)
    refused = _run_as_installed(script, [*arguments, "--no-such-option"], tmp_path)
    assert refused.returncode == 2, refused.stderr
    _assert_one_error_line(refused.stderr, script, "unrecognized arguments: --no-such-option")
    assert not (tmp_path / writes).exists()

    finished = _run_as_installed(script, arguments, tmp_path)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "error" not in finished.stderr.lower() and (tmp_path / writes).exists(), finished.stderr
