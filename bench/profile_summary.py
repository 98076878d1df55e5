"""`python -m bench.profile_summary DIR`: from the cProfile files of a `--profile` run, where time goes.

For each phase: total profiled seconds, seconds by package (Dagster and its storage, our code,
HTTP), and our functions by cumulative time. cProfile adds per-call overhead, so
Python-heavy code (Dagster) looks heavier than it is; compare shares, not absolute seconds.
"""

from __future__ import annotations

import pstats
import sys
from collections import defaultdict
from pathlib import Path

PACKAGES = (  # (label, substring of the file path, or of the C function name for built-ins)
    ("sqlite (Dagster's event log and run storage)", "sqlite3"),
    ("sockets (HTTP)", "_socket"),
    ("dagster", "dagster"),
    ("sqlalchemy", "/sqlalchemy/"),
    ("ssl context set-up", "_ssl"),
    ("json (stdlib)", "/json/"),
    ("polars / pandera", "polars"),
    ("pyarrow", "pyarrow"),
    # DuckDB's methods are pybind11 functions, which cProfile does not see as calls of their own:
    # their time is the self time of the function of ours that calls them.
    ("our code, with the DuckDB calls it makes", "/ledger_pipeline/"),
)


def _package(filename: str, name: str) -> str:
    where = f"{filename} {name}"
    for label, marker in PACKAGES:
        if marker in where:
            return label
    return "other"


def summarise(prof: Path, top: int = 25) -> str:
    stats = pstats.Stats(str(prof))
    total = max(ct for (_, _, _), (_, _, _, ct, _) in stats.stats.items())
    by_package: dict[str, float] = defaultdict(float)
    ours = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():
        by_package[_package(filename, name)] += tottime
        if "/ledger_pipeline/" in filename and "/sandbox/" not in filename:
            ours.append((cumtime, tottime, calls, f"{filename.split('/ledger_pipeline/')[-1]}:{line}({name})"))
    lines = [f"== {prof.stem}: {total:.2f}s profiled", "self time by package:"]
    lines += [f"  {seconds:7.2f}s {seconds / total:5.1%}  {label}"
              for label, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])]
    lines.append("our functions by cumulative time (cumulative, self, calls):")
    lines += [f"  {c:7.2f}s {t:6.2f}s {n:6d}  {where}" for c, t, n, where in sorted(ours, reverse=True)[:top]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent / "out" / "profile"
    files = sorted(folder.glob("*.prof"))
    if not files:
        print(f"no .prof files in {folder}; run `python -m bench --profile` first", file=sys.stderr)
        return 1
    text = "\n\n".join(summarise(f) for f in files)
    (folder / "summary.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
