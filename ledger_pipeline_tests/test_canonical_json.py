"""The log's canonical JSON keeps json.dumps's spelling exactly (every ledger was written with it), whichever
encoder writes it, and a rail answer holding NaN or an infinity is refused where it is parsed."""

from __future__ import annotations

import json
import random
import struct

import pytest

from ledger_pipeline.lib.canonical import canonical_json, parse_json


def _json_dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _floats(rng: random.Random, n: int) -> list[float]:
    out = []
    while len(out) < n:
        kind = len(out) % 3
        if kind == 0:  # any double: every exponent
            value = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        elif kind == 1:  # money-like
            value = round(rng.uniform(-1e7, 1e7), rng.randint(0, 6))
        else:  # around the switches between decimal and exponent spellings
            value = rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
        if value == value and abs(value) != float("inf"):
            out.append(value)
    return out


def test_floats_are_spelled_as_json_dumps_spells_them():
    rng = random.Random(20261205)
    floats = _floats(rng, 30_000) + [1e-5, 1e-7, 1e-4, 1e15, 1e16, 1.5e16, -0.0, 5e-324, 1e300, 123.45, 0.1]
    assert [canonical_json(f) for f in floats] == [_json_dumps(f) for f in floats]
    payload = {"Line": [{"Amount": f, "Id": str(i)} for i, f in enumerate(floats[:200])], "TotalAmt": 1e-6}
    assert canonical_json(payload) == _json_dumps(payload)


def test_strings_keys_and_odd_values_are_spelled_as_json_dumps_spells_them():
    rng = random.Random(7)
    alphabet = [chr(c) for c in (*range(0, 0x80), 0x7F, 0xA0, 0xE9, 0x2028, 0x2029, 0xD7FF, 0xE000, 0xFFFF, 0x1F600)]
    strings = ["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(3_000)]
    nested = {s: [s, {"z": None, "a": True, "é": False}] for s in strings[:500]}
    values = [*strings, nested, 2**63, -(2**63), 2**64 - 1, 2**64, 10**30, [], {}, "", "e-mail 1e-5 0.00001"]
    for value in values:
        assert canonical_json(value) == _json_dumps(value), repr(value)[:80]


def test_what_orjson_refuses_json_dumps_decides():
    assert canonical_json({1: "x"}) == '{"1":"x"}'
    assert canonical_json({"b": [2**70]}) == '{"b":[1180591620717411303424]}'
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: json.dumps writes it, the log cannot store it
        canonical_json({"a": "\ud800"}).encode("utf-8")


@pytest.mark.parametrize("body", [b'{"amount": NaN}', b'{"a": [Infinity]}', b'{"a": -Infinity}'])
def test_a_rail_answer_holding_nan_or_an_infinity_is_refused_at_parse(body):
    """orjson would write NaN as null: it never gets that far, as no rail answer holding one is parsed."""
    with pytest.raises(ValueError, match="is not a JSON number"):
        parse_json(body)
    assert parse_json(b'{"amount": 1.5e-7, "n": null}') == {"amount": 1.5e-7, "n": None}


def test_ids_that_only_look_like_exponents_are_written_by_orjson(monkeypatch):
    """A UUID such as Ramp's ("...73e-4f...") holds "<digit>e-" inside a string: that is no number, and half of a
    Ramp page once went through json.dumps for it (six times slower)."""
    from ledger_pipeline.lib import canonical

    payload = {"id": "6ae7fa73e-c5a9-4f90-8098-91889f0444e4", "card_id": "b5b1f785-f8de-4046-9fd8-d1c02a517438",
               "amount": 12.5, "tags": ["13e-4"]}  # fmt: skip
    expected = _json_dumps(payload)

    def refuse(value):  # noqa: ANN001, ANN202
        raise AssertionError("json.dumps was used")

    monkeypatch.setattr(canonical, "_json_dumps", refuse)
    assert canonical_json(payload) == expected
