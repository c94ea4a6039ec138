"""The ``hwnas`` command line: export and db sub-commands, errors as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwnas.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_of_every_command() -> None:
    for argv in (["--help"], ["export", "--help"], ["db", "import-csv", "--help"], ["space", "info", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "hwnas.cli", *argv], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage:" in proc.stdout


def test_space_info_json(capsys) -> None:
    code, out, _ = run_cli(capsys, "space", "info", "--space", "nb201", "--json")
    assert code == 0 and json.loads(out)["size"] == 15625


def test_export_sample_and_archs(tmp_path, capsys) -> None:
    code, out, _ = run_cli(capsys, "export", "--space", "nb201", "--sample", "2", "--seed", "3", "--out", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["exported"] == 2
    archs = tmp_path / "archs.txt"
    archs.write_text("# a comment\n|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|\n\n")
    code, out, _ = run_cli(capsys, "export", "--space", "nb201", "--archs", str(archs), "--out", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["models"] == 1
    assert (tmp_path / "nb201-00001.onnx").exists()
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--sample", "0"], "--sample must be a positive integer"),
        (["--sample", "20000"], "exceeds"),
        (["--archs", "/nonexistent/archs.txt"], "no such file"),
        (["--sample", "2", "--all"], "exactly one of"),
        ([], "exactly one of"),
    ],
)
def test_export_bad_input(tmp_path, capsys, argv, message) -> None:
    code, _, err = run_cli(capsys, "export", "--space", "nb201", "--out", str(tmp_path), *argv)
    assert code == 2
    assert err.startswith("hwnas: error:") and message in err and err.count("\n") == 1


def test_export_bad_arch_line_names_the_line(tmp_path, capsys) -> None:
    archs = tmp_path / "archs.txt"
    archs.write_text("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|\n|bad~0|\n")
    code, _, err = run_cli(capsys, "export", "--space", "nb201", "--archs", str(archs), "--out", str(tmp_path / "o"))
    assert code == 2 and f"{archs}:2:" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_export_all_refused_for_macro(tmp_path, capsys) -> None:
    code, _, err = run_cli(capsys, "export", "--space", "macro", "--all", "--out", str(tmp_path))
    assert code == 2 and "use --sample" in err


def test_db_commands_on_missing_db(tmp_path, capsys) -> None:
    for sub in ("summary", "table"):
        code, _, err = run_cli(capsys, "db", sub, "--db", str(tmp_path / "none.db"))
        assert code == 2 and "no such database" in err
    assert not (tmp_path / "none.db").exists()


def test_db_import_table_export_merge(tmp_path, capsys) -> None:
    csv_in = tmp_path / "lat.csv"
    csv_in.write_text(
        "space,arch,device,latency_ms,extra\n"
        "nb201,|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|,pixel3,17.2,x\n"
        "nb201,|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|,pixel3,3.6,y\n"
    )
    db = str(tmp_path / "a.db")
    code, out, _ = run_cli(capsys, "db", "import-csv", str(csv_in), "--db", db, "--json")
    assert code == 0 and json.loads(out)["added"] == 2
    code, out, _ = run_cli(capsys, "db", "import-csv", str(csv_in), "--db", db, "--json")
    assert code == 0 and json.loads(out)["added"] == 0
    code, out, _ = run_cli(capsys, "db", "table", "--db", db, "--json")
    rows = json.loads(out)
    assert [r["median_ms"] for r in rows] == [3.6, 17.2] and rows[0]["device"] == "pixel3"
    code, out, _ = run_cli(capsys, "db", "summary", "--db", db, "--json")
    assert code == 0 and json.loads(out)["measurements"] == 2
    code, _, _ = run_cli(capsys, "db", "export", "--db", db, "--csv", str(tmp_path / "out.csv"))
    assert code == 0 and (tmp_path / "out.csv").read_text().count("\n") == 3
    db2 = str(tmp_path / "b.db")
    code, out, _ = run_cli(capsys, "db", "merge", db, "--db", db2, "--json")
    assert code == 0
    code, out, _ = run_cli(capsys, "db", "table", "--db", db2, "--json")
    assert len(json.loads(out)) == 2


def test_db_import_bad_csv(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("space,arch,device\nmyspace,x,y\n")
    code, _, err = run_cli(capsys, "db", "import-csv", str(bad), "--db", str(tmp_path / "a.db"))
    assert code == 2 and "latency_ms" in err and err.count("\n") == 1


def test_db_import_rejects_bad_nb201_arch(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("space,arch,device,latency_ms\nnb201,|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|,d,1.0\n")
    db = tmp_path / "a.db"
    code, _, err = run_cli(capsys, "db", "import-csv", str(bad), "--db", str(db))
    assert code == 2 and f"{bad}:2:" in err and "nor_conv_5x5" in err


def test_db_table_shows_the_ratio_to_the_panel_beside_the_median() -> None:
    from hwnas.cli.db import format_table

    row = {"key": "nb201-1", "arch": "a", "device": "box", "median_ms": 2.0, "interval_pct": 80.0,
           "interval": "repeat-pi95", "p90_ms": 2.1, "repeats": 30, "run_shift": 0.5, "history_runs": 3,
           "ref_ratio": 1.25, "ref_ratio_interval": [1.2, 1.3]}
    text = format_table([row, {**row, "key": "nb201-2", "ref_ratio": None, "ref_ratio_interval": None}])
    lines = text.splitlines()
    assert "/ panel" in lines[0]
    assert "1.250 ±4.0%" in lines[2] and "±80.0% rep" in lines[2] and "+50.0%" in lines[2]
    assert lines[3].split()[-2] == "-"  # no ratio: a dash, not a number
    assert any(line.startswith("/ panel: ") for line in lines)
