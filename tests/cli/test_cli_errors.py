"""Every bad command line ends with one line on stderr and exit code 2, never a traceback.

Run in-process through ``main(argv)`` (stderr captured), plus a few cases as
real subprocesses. Every case fails before doing work (no training, audit or
benchmark runs), so the table takes a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from coreset_verify.cli import main  # noqa: E402
from coreset_verify.models import mlp  # noqa: E402
from coreset_verify.network import save_model  # noqa: E402


def _unwritable(tmp: Path) -> str:
    """A file path no one may create (root included): under /sys, else a read-only dir."""
    if Path("/sys").is_dir():
        return "/sys/coreset-verify-test.pt"
    locked = tmp / "locked"
    locked.mkdir(parents=True)
    locked.chmod(0o500)
    return str(locked / "x.pt")


def _files(tmp: Path) -> dict[str, str]:
    """Models (good and hostile) and output paths the table refers to by name."""
    good = tmp / "model.pt"
    save_model(mlp([6, 8, 3], seed=1), good)
    raw = good.read_bytes()
    (tmp / "empty.pt").write_bytes(b"")
    (tmp / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (tmp / "text.pt").write_text("this is not a model\n")
    (tmp / "binary.pt").write_bytes(bytes(range(256)) * 4)
    torch.save({"0.weight": torch.zeros(8, 6)}, tmp / "partial_state.pt")
    torch.save(torch.zeros(3), tmp / "tensor.pt")
    torch.save(mlp([6, 8, 3], seed=1).half(), tmp / "half.pt")
    torch.save(mlp([6, 8, 3], seed=1, activation="sigmoid"), tmp / "sigmoid.pt")
    torch.save(mlp([6, 8, 3], seed=1, activation="silu"), tmp / "silu.pt")
    torch.save(mlp([6, 3], seed=1), tmp / "one_linear.pt")
    torch.save({"a": 1}, tmp / "junk_dict.pt")
    (tmp / "a_dir").mkdir()
    (tmp / "a_file").write_text("x")
    return {
        "GOOD": str(good), "EMPTY": str(tmp / "empty.pt"),
        "TRUNCATED": str(tmp / "truncated.pt"), "TEXT": str(tmp / "text.pt"),
        "BINARY": str(tmp / "binary.pt"), "PARTIAL": str(tmp / "partial_state.pt"),
        "TENSOR": str(tmp / "tensor.pt"), "HALF": str(tmp / "half.pt"),
        "SIGMOID": str(tmp / "sigmoid.pt"), "SILU": str(tmp / "silu.pt"),
        "ONE_LINEAR": str(tmp / "one_linear.pt"), "JUNK_DICT": str(tmp / "junk_dict.pt"),
        # a device that refuses every write (Linux); elsewhere another unwritable path
        "FULL": "/dev/full" if Path("/dev/full").exists() else _unwritable(tmp / "full"),
        "DIR": str(tmp / "a_dir"), "FILE": str(tmp / "a_file"),
        "MISSING": str(tmp / "missing.pt"), "NODIR_OUT": str(tmp / "no" / "such" / "x.pt"),
        "OUT": str(tmp / "out.pt"), "UNWRITABLE": _unwritable(tmp),
        "UNDER_FILE": str(tmp / "a_file" / "report"),
    }


PRUNE = ["prune", "GOOD", "--keep", "0.5", "--beta", "2", "-o", "OUT"]


def _prune(**change: str) -> list[str]:
    """PRUNE with one option replaced (model=... replaces the positional model)."""
    argv = list(PRUNE)
    for option, value in change.items():
        if option == "model":
            argv[1] = value
        else:
            argv[argv.index(option.replace("_", "-").join(["--", ""]) if len(option) > 1
                            else "-" + option) + 1] = value
    return argv


CASES = {
    # model files
    "prune: model missing": _prune(model="MISSING"),
    "prune: model empty": _prune(model="EMPTY"),
    "prune: model truncated": _prune(model="TRUNCATED"),
    "prune: model text": _prune(model="TEXT"),
    "prune: model binary junk": _prune(model="BINARY"),
    "prune: model a directory": _prune(model="DIR"),
    "prune: model a tensor": _prune(model="TENSOR"),
    "prune: model half precision": _prune(model="HALF"),
    "prune: model with a SiLU layer": _prune(model="SILU"),
    "prune: model with no hidden layer": _prune(model="ONE_LINEAR"),
    "prune: a dict that is no state_dict": [*_prune(model="JUNK_DICT"),
                                            "--architecture", "6,8,3"],
    "prune: state_dict without --architecture": _prune(model="PARTIAL"),
    "prune: state_dict not fitting --architecture": [*_prune(model="PARTIAL"),
                                                      "--architecture", "6,8,3"],
    "prune: --architecture text": [*PRUNE, "--architecture", "a,b"],
    "prune: --architecture size 0": [*PRUNE, "--architecture", "6,0,3"],
    # -o
    "prune: -o folder missing": _prune(o="NODIR_OUT"),
    "prune: -o unwritable": _prune(o="UNWRITABLE"),
    "prune: -o a directory": _prune(o="DIR"),
    "prune: -o a full device": _prune(o="FULL"),
    # numbers
    "prune: --keep 1.5": _prune(keep="1.5"),
    "prune: --keep 0": _prune(keep="0"),
    "prune: --keep nan": _prune(keep="nan"),
    "prune: --beta -1": _prune(beta="-1"),
    "prune: --beta inf": _prune(beta="inf"),
    "prune: --beta text": _prune(beta="big"),
    "prune: --delta 2": [*PRUNE, "--delta", "2"],
    "prune: --epsilon -1": ["prune", "GOOD", "--epsilon", "-1", "--beta", "2", "-o", "OUT"],
    "prune: --seed -1": [*PRUNE, "--seed", "-1"],
    "prune: --order sideways": [*PRUNE, "--order", "sideways"],
    "prune: --keep and --epsilon": [*PRUNE, "--epsilon", "0.5"],
    "prune: no -o": PRUNE[:-2],
    "prune: unknown option": [*PRUNE, "--fast"],
    # audit
    "audit: --model missing": ["audit", "--model", "MISSING"],
    "audit: --model text": ["audit", "--model", "TEXT"],
    "audit: --model a directory": ["audit", "--model", "DIR"],
    "audit: --layer 99": ["audit", "--model", "GOOD", "--layer", "99"],
    "audit: --layer -1": ["audit", "--model", "GOOD", "--layer", "-1"],
    "audit: sigmoid layer": ["audit", "--model", "SIGMOID"],
    "audit: --report unwritable": ["audit", "--report", "UNWRITABLE"],
    "audit: --report a file": ["audit", "--report", "FILE"],
    "audit: --report under a file": ["audit", "--report", "UNDER_FILE"],
    "audit: --time-limit -1": ["audit", "--time-limit", "-1"],
    "audit: --time-limit 0": ["audit", "--time-limit", "0"],
    "audit: --beta 0": ["audit", "--beta", "0"],
    "audit: --pruner-time-limit -1": ["audit", "--pruner-time-limit", "-1"],
    "audit: --delta 1": ["audit", "--delta", "1"],
    "audit: unknown pruner": ["audit", "--pruners", "nope"],
    # bench
    "bench: --size -5": ["bench", "--size", "-5"],
    "bench: --size 0": ["bench", "--size", "0"],
    "bench: --size 2.5": ["bench", "--size", "2.5"],
    "bench: --repeats 0": ["bench", "--repeats", "0"],
    "bench: --sample-size -1": ["bench", "--sample-size", "-1"],
    # demo (refused before any training)
    "demo: --sample-size 0": ["demo", "--sample-size", "0"],
    "demo: --delta 0": ["demo", "--delta", "0"],
    "demo: --time-limit -1": ["demo", "--time-limit", "-1"],
    "demo: --seed -1": ["demo", "--seed", "-1"],
    "demo: --epochs 0": ["demo", "--epochs", "0"],
    "demo: --finetune-epochs -1": ["demo", "--finetune-epochs", "-1"],
    "demo: --report unwritable": ["demo", "--report", "UNWRITABLE"],
    "demo: --report a file": ["demo", "--report", "FILE"],
    # the command itself
    "no command": [],
    "unknown command": ["train"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return _files(tmp_path_factory.mktemp("cli"))


def _resolve(argv: list[str], files: dict[str, str]) -> list[str]:
    return [files.get(a, a) for a in argv]


def _check(code: int, stderr: str, stdout: str = "") -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert "error: " in lines[0]
    assert lines[0].startswith("coreset-verify"), lines[0]


@pytest.mark.parametrize("argv", list(CASES.values()), ids=list(CASES))
def test_bad_command_line_gives_one_line_and_exit_code_2(argv, files, capsys):
    try:
        code = main(_resolve(argv, files))
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    _check(code, out.err, out.out)
    assert not Path(files["OUT"]).exists()  # nothing written on an error


def test_errors_name_the_command_and_the_option(files, capsys):
    for argv, words in [(["bench", "--size", "-5"], ["bench", "--size", "-5"]),
                        (_prune(model="EMPTY"), ["prune", "empty"]),
                        (_prune(o="DIR"), ["prune", "-o", "directory"])]:
        try:
            main(_resolve(argv, files))
        except SystemExit:
            pass
        err = capsys.readouterr().err
        assert all(word in err for word in words), err


SUBPROCESS = ["prune: model missing", "prune: model truncated", "prune: model text",
              "prune: -o unwritable", "bench: --repeats 0", "audit: --report a file"]


def test_bad_command_lines_in_a_real_process(files):
    # One interpreter runs several cases (each through main), to keep it quick;
    # test_cli.py runs `python -m coreset_verify.cli` itself on a bad command line.
    script = ("import json, sys\nfrom coreset_verify.cli import main\n"
              "for argv in json.loads(sys.argv[1]):\n"
              "    try:\n        code = main(argv)\n"
              "    except SystemExit as exc:\n        code = exc.code\n"
              "    sys.stderr.write(f'@@ {code}\\n')\n")
    cases = [_resolve(CASES[name], files) for name in SUBPROCESS]
    out = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    rest = out.stderr
    for _ in cases:
        err, rest = rest.split("@@ ", 1)
        code, rest = rest.split("\n", 1)
        _check(int(code), err)
