"""Console scripts: bad input is one line `PROG: error: ...` on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import configparser
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
