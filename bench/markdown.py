"""`python -m bench.markdown [results.json]`: the figures of a run as Markdown, for docs/performance.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.queries import QUERIES
from bench.report import PHASE_LABELS, rounds_text
from bench.storage import describe, recorded_storage

RATE_PHASES = ("floor", "dlt_default", "dlt_tuned", "phase1_initial")


def _seconds(entry: dict) -> float:
    return sum(r["seconds"] for r in entry["runs"]) if "runs" in entry else entry["seconds"]


def machine(figures: dict) -> str:
    m = figures["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    storage = recorded_storage(figures)
    return (f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB (from /proc), Python {m['python']}, {versions}; "
            f"tree {m['commit']} with {m['uncommitted_files']} uncommitted files (other engineers' work in progress); "
            f"Dagster {describe(storage)}.")


def table(figures: dict) -> str:
    phases, objects = figures["phases"], figures["floor_objects"]
    best = figures["ratios"]["dlt_best"]
    best_s = phases[best]["seconds"] if best else None
    floor_s = phases["floor"]["seconds"]
    rows = ["| contender / phase | seconds | objects/s | peak RSS MB | vs dlt best | vs floor | CPU s "
            "| others' CPU s | load after |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, label in PHASE_LABELS:
        if key not in phases:
            continue
        e, s = phases[key], _seconds(phases[key])
        rate = f"{objects / s:,.0f}" if key in RATE_PHASES else ""
        vs_dlt = f"{best_s / s:.2f}x" if best_s and rate else ""
        cpu = f"{e['cpu_seconds'] + e['server_cpu_seconds']:.1f}" if "server_cpu_seconds" in e else "n/a"
        rows.append(f"| {label} | {s:.2f} | {rate} | {e['peak_rss_mb']:.0f} | {vs_dlt} | {s / floor_s:.2f}x | "
                    f"{cpu} | {e.get('others_cpu_seconds', 'n/a')} | {e.get('load_avg_1m_after', 'n/a')} |")
    rows += ["", "| depth (incremental syncs) | log rows | AP aging, one tenant | vendor spend, all tenants | "
                 "bills as of (history) |", "|---:|---:|---:|---:|---:|"]
    for depth, q in sorted(figures["queries"].items(), key=lambda kv: int(kv[0])):
        cells = " | ".join(f"{q['queries'][n]['median_ms']:.1f} ms (cold {q['queries'][n]['cold_ms']:.0f})"
                           for n in QUERIES)
        rows.append(f"| {depth} | {q['log_rows']:,} | {cells} |")
    return "\n".join(rows)


def targets(figures: dict) -> str:
    rows = ["| target | measured | limit | met | by |", "|---|---:|---:|:---:|---|"]
    for t in figures["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        rows.append(f"| {t['target']} | {t['value']} | {t['limit']:g} | {met} | {t['by']} |")
    return "\n".join(rows)


def stripe(figures: dict) -> str:
    """Stripe's floor and first sync, the ratio beside QBO's, incremental steps and memory at two sizes."""
    st, phases = figures["stripe"], figures["phases"]
    rows = ["| Stripe | seconds | objects/s | peak RSS MB | vs Stripe floor | CPU s | others' CPU s |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label in (("stripe_floor", "floor: fetch + parse"), ("stripe_initial", "ours: extract + log")):
        e = phases[key]
        rows.append(f"| {label} | {e['seconds']:.2f} | {st['objects_total'] / e['seconds']:,.0f} | "
                    f"{e['peak_rss_mb']:.0f} | {e['seconds'] / st['floor_seconds']:.2f}x | "
                    f"{e['cpu_seconds'] + e['server_cpu_seconds']:.1f} | {e['others_cpu_seconds']} |")
    qbo = st["qbo_extract_log_vs_floor"]
    rows += ["", f"Extract + log over the floor: QBO {f'{qbo:.2f}x' if qbo is not None else 'n/a'}, Stripe "
                 f"{st['extract_log_vs_floor']:.2f}x{rounds_text(st)}. Stripe objects: {st['objects_total']:,} "
                 f"({st['share_of_qbo_objects']:.1%} of QBO's): "
                 + ", ".join(f"{k} {v:,}" for k, v in st["objects_by_entity"].items()) + ".", ""]
    rows += ["| incremental step | clock | seconds | events (fetched across entities) | requests | rows logged "
             "| ms/event | ms/event beyond nothing changed |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in st.get("incremental", []):
        rows.append(f"| {s['step']} | +{s['clock_step_hours']:g} h | {s['seconds']:.2f} | {s['events']:,} "
                    f"({s['events_fetched']:,}) | {s['requests']} | {s['log_rows_added']:,} | "
                    f"{s['ms_per_event'] if s['ms_per_event'] is not None else 'n/a'} | "
                    f"{s.get('ms_per_event_beyond_nothing_changed') or 'n/a'} |")
    if "memory" in st:
        m = st["memory"]
        rows += ["", "| one account, first sync | QBO objects | Stripe objects | seconds | peak RSS MB | RSS before MB |",
                 "|---|---:|---:|---:|---:|---:|"]
        for k in ("n", "scaled"):
            rows.append(f"| {k} | {m[k]['qbo_objects']:,} | {m[k]['stripe_objects']:,} | {m[k]['seconds']:.2f} | "
                        f"{m[k]['peak_rss_mb']:.0f} | {m[k]['rss_before_sync_mb']:.0f} |")
    return "\n".join(rows)


def _rail_head(figures: dict, rail: str, title: str) -> list[str]:
    """A rail's floor and first sync (vs the rail's own floor), then its ratio beside QBO's and what it read."""
    r, phases = figures[rail], figures["phases"]
    rows = [f"| {title} | seconds | objects/s | peak RSS MB | vs {title} floor | CPU s | others' CPU s |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label in ((f"{rail}_floor", "floor: fetch + parse"), (f"{rail}_initial", "ours: extract + log")):
        e = phases[key]
        rows.append(f"| {label} | {e['seconds']:.2f} | {r['objects_total'] / e['seconds']:,.0f} | "
                    f"{e['peak_rss_mb']:.0f} | {e['seconds'] / r['floor_seconds']:.2f}x | "
                    f"{e['cpu_seconds'] + e['server_cpu_seconds']:.1f} | {e['others_cpu_seconds']} |")
    qbo = r["qbo_extract_log_vs_floor"]
    return rows + ["", f"Extract + log over the floor: QBO {f'{qbo:.2f}x' if qbo is not None else 'n/a'}, {title} "
                       f"{r['extract_log_vs_floor']:.2f}x{rounds_text(r)}. {title} objects: {r['objects_total']:,} "
                       f"({r['share_of_qbo_objects']:.1%} of QBO's) in {r['pages']:,} pages: "
                       + ", ".join(f"{k} {v:,}" for k, v in r["objects_by_entity"].items()) + ".", ""]


def _per_row(s: dict) -> str:
    return (f"{s['ms_per_row'] if s['ms_per_row'] is not None else 'n/a'} | "
            f"{s.get('ms_per_row_beyond_nothing_changed') or 'n/a'}")


def _memory(figures: dict, rail: str, title: str) -> list[str]:
    """A rail's first sync of one tenant alone at N and at scale x N objects per company."""
    if "memory" not in figures[rail]:
        return []
    m = figures[rail]["memory"]
    rows = ["", f"| one tenant, first sync | QBO objects | {title} objects | seconds | peak RSS MB | RSS before MB |",
            "|---|---:|---:|---:|---:|---:|"]
    for k in ("n", "scaled"):
        rows.append(f"| {k} | {m[k]['qbo_objects']:,} | {m[k][f'{rail}_objects']:,} | {m[k]['seconds']:.2f} | "
                    f"{m[k]['peak_rss_mb']:.0f} | {m[k]['rss_before_sync_mb']:.0f} |")
    return rows


def plaid(figures: dict) -> str:
    """Plaid's floor and first sync, the ratio beside QBO's, incremental steps and memory at two sizes."""
    rows = _rail_head(figures, "plaid", "Plaid")
    rows += ["| incremental step | clock | seconds | transactions added / modified / removed | requests | rows logged "
             "| ms/row | ms/row beyond nothing changed |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in figures["plaid"].get("incremental", []):
        sent = " / ".join(f"{s['transactions'].get(n, 0):,}" for n in ("added", "modified", "removed"))
        rows.append(f"| {s['step']} | +{s['clock_step_hours']:g} h | {s['seconds']:.2f} | {sent} | {s['requests']} | "
                    f"{s['log_rows_added']:,} | {_per_row(s)} |")
    return "\n".join(rows + _memory(figures, "plaid", "Plaid"))


def ramp(figures: dict) -> str:
    """Ramp's floor and first sync, the ratio beside QBO's, incremental steps (objects read again beside the rows
    they logged) and memory at two sizes."""
    rows = _rail_head(figures, "ramp", "Ramp")
    rows += ["| incremental step | clock | seconds | requests | objects read | rows logged (by entity) "
             "| ms/row | ms/row beyond nothing changed |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in figures["ramp"].get("incremental", []):
        by_entity = ", ".join(f"{k} {v:,}" for k, v in s["log_rows_added_by_entity"].items() if v)
        rows.append(f"| {s['step']} | +{s['clock_step_hours']:g} h | {s['seconds']:.2f} | {s['requests']} | "
                    f"{s['objects_read']:,} | {s['log_rows_added']:,}{f' ({by_entity})' if by_entity else ''} | "
                    f"{_per_row(s)} |")
    return "\n".join(rows + _memory(figures, "ramp", "Ramp"))


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path(__file__).resolve().parent / "results.json"
    figures = json.loads(path.read_text())
    print(f"### Machine\n\n{machine(figures)}\n\n### Figures\n\n{table(figures)}\n\n### Targets\n\n{targets(figures)}")
    if "stripe" in figures:
        print(f"\n### Stripe\n\n{stripe(figures)}")
    if "plaid" in figures:
        print(f"\n### Plaid\n\n{plaid(figures)}")
    if "ramp" in figures:
        print(f"\n### Ramp\n\n{ramp(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
