"""Numbers and instants typed at the CLI: `sandbox advance --days` takes plain ASCII decimals only, and `as-of
--at` refuses UTC offsets that do not exist. Each refusal is one line, exit 2, and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger_pipeline import audit, cli
from ledger_pipeline.lib import ids
from ledger_pipeline.rails.qbo.sandbox import GENESIS


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _clock(env: Path) -> int:
    return json.loads((env / "state" / "qbo_sandbox.json").read_text())["clock_us"]


@pytest.mark.parametrize(
    "days",
    [
        "1_0", "١", "٣.٥", "１", "1e-300", "1e2", "1E1", "0x10", "+1", "-0.5", " 1", "1 ", "1.", ".5", "1,5",
        "0.0001", "0.00069", "0", "0.0", "365.000001", "366", "nan", "NaN", "inf", "infinity", "", "1/2", "½",
        "9" * 400,
    ],
)  # fmt: skip
def test_days_must_be_a_plain_decimal_from_one_minute_to_a_year(env, capsys, days):
    assert cli.main(["sandbox", "advance", "--days", "1"]) == 0  # a state file to keep unchanged
    capsys.readouterr()
    before = _files(env)

    assert cli.main(["sandbox", "advance", "--days", days]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"ledger-pipeline: error: invalid --days {ids.shown(days)}: ") and err.count("\n") == 1
    assert "expected a plain decimal number of days such as 3, 0.5 or 2.25" in err and len(err) < 300, err
    assert _files(env) == before


@pytest.mark.parametrize(("days", "moved"), [("3", timedelta(days=3)), ("0.5", timedelta(hours=12)),
                                             ("2.25", timedelta(days=2, hours=6)), ("0.0007", timedelta(seconds=60.48)),
                                             ("365", timedelta(days=365)), ("007", timedelta(days=7))])  # fmt: skip
def test_plain_decimals_move_the_clock_by_exactly_that(env, capsys, days, moved):
    assert cli.main(["sandbox", "advance", "--days", "1"]) == 0
    start = _clock(env)

    assert cli.main(["sandbox", "advance", "--days", days]) == 0

    assert _clock(env) - start == moved // timedelta(microseconds=1)
    assert capsys.readouterr().err == ""


def test_advance_days_takes_numbers_too_but_not_booleans_or_infinities():
    assert ids.advance_days(0.5) == 0.5 and ids.advance_days(2) == 2.0 and ids.advance_days("0.25") == 0.25
    for value in (True, float("inf"), float("nan"), 1e-300, 0.0006, 365.5, None):
        with pytest.raises(ids.InvalidInput, match="invalid --days"):
            ids.advance_days(value)


@pytest.mark.parametrize("offset", ["+05:99", "+25:00", "-24:00", "+23:60", "-99:99", "+24:00"])
def test_at_refuses_utc_offsets_that_do_not_exist(env, capsys, offset):
    at = f"2026-10-02T00:00:00{offset}"

    assert cli.main(["as-of", "--tenant", "acme", "--entity", "bills", "--at", at]) == 2

    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("ledger-pipeline: error: invalid timestamp") and f"UTC offset {offset} is out of range" in err
    assert list(env.iterdir()) == [], "nothing is opened or created"


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-10-02T00:00:00+23:59", datetime(2026, 10, 1, 0, 1, tzinfo=UTC)),
        ("2026-10-02T00:00:00-23:59", datetime(2026, 10, 2, 23, 59, tzinfo=UTC)),
        ("2026-10-02T00:00:00+05:30", datetime(2026, 10, 1, 18, 30, tzinfo=UTC)),
        ("2026-10-02T00:00:00-00:00", datetime(2026, 10, 2, tzinfo=UTC)),
        ("2026-10-02T00:00:00Z", datetime(2026, 10, 2, tzinfo=UTC)),
    ],
)
def test_real_offsets_still_work(text, utc):
    assert audit.instant(text) == utc
    assert utc >= GENESIS - timedelta(days=1)
