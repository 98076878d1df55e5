"""`ledger-pipeline`: the command line for operators and analysts."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NoReturn

from ledger_pipeline.lib import dagster_home, ids, output_files, rails, settings, warehouse
from ledger_pipeline.lib.dagster_home import DagsterHomeError
from ledger_pipeline.lib.rails import Connection, Rail
from ledger_pipeline.lib.tenants import Tenant, TenantError, TenantRegistry
from ledger_pipeline.lib.warehouse import WarehouseError

DEFAULT_RAIL = "qbo"  # the ledger of record: what `sandbox`, `as-of` and `history` mean without --rail


class _Parser(argparse.ArgumentParser):
    """Argument errors become InvalidInput: one line on stderr and exit 2, like every other refused input."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("ledger-pipeline").strip()
        raise ids.InvalidInput(f"{command}: {message}" if command else message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ledger-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    rail_names = list(rails.all_rails())
    sandbox = commands.add_parser("sandbox", help="the built-in emulators of the rails").add_subparsers(
        dest="sandbox_command", required=True
    )
    serve = sandbox.add_parser("serve", help="serve one rail's sandbox over HTTP on localhost")
    serve.add_argument("--rail", choices=rail_names, default=DEFAULT_RAIL)
    serve.add_argument("--port", type=int, help="default: the rail's own (8765 for qbo)")
    serve.add_argument("--host", default="127.0.0.1")
    advance = sandbox.add_parser("advance", help="move the shared sandbox clock forward so the books change")
    advance.add_argument("--days", default="1", help="a plain decimal such as 3, 0.5 or 2.25: one minute to 365 days")
    credentials = sandbox.add_parser(
        "credentials", help="a tenant's demo credentials for one rail's sandbox, as one JSON object"
    )
    credentials.add_argument("--rail", choices=rail_names, required=True)
    credentials.add_argument("--tenant", required=True)
    breaks = sandbox.add_parser(
        "breaks", help="the breaks the sandbox put into the tenants' businesses, as a JSON list (ground truth)"
    )
    breaks.add_argument("--tenant", help="one tenant (default: every tenant on the QBO sandbox)")

    tenants = commands.add_parser("tenants", help="the tenant registry").add_subparsers(
        dest="tenants_command", required=True
    )
    add = tenants.add_parser("add", help="register a tenant with one or more rails and add its Dagster partition")
    add.add_argument("tenant_id")
    for rail in rails.all_rails().values():
        add.add_argument(rail.account_option, dest=f"account_{rail.name}", help=f"the tenant's {rail.account_noun}")
    _connection_options(add)
    connect = tenants.add_parser("connect", help="connect a registered tenant to one more rail")
    connect.add_argument("tenant_id")
    connect.add_argument("--rail", choices=rail_names, required=True)
    connect.add_argument("--account", required=True, help="the tenant's account on that rail (QBO: the realm id)")
    _connection_options(connect)
    disconnect = tenants.add_parser("disconnect", help="stop syncing one rail of a tenant; its log stays")
    disconnect.add_argument("tenant_id")
    disconnect.add_argument("--rail", choices=rail_names, required=True)
    tenants.add_parser("list", help="list registered tenants and their rails")
    retire = tenants.add_parser(
        "retire", help="stop syncing a tenant: out of the registry and Dagster's partitions; its log stays"
    )
    retire.add_argument("tenant_id")

    approve = commands.add_parser(
        "approve-sync", help="let one sync through that the circuit breaker stopped (recorded with who and why)"
    )
    approve.add_argument("--tenant", required=True)
    approve.add_argument("--rail", required=True, choices=rail_names)
    approve.add_argument("--entity", help="the entity the breaker named (default: every entity of the next run)")
    approve.add_argument("--reason", required=True, help="why the deletions or the rail's earlier clock are real")
    approve.add_argument("--by", help="who approves (default: the login name)")

    decide = commands.add_parser(
        "decide", help="record a person's decision about a link or a break in the log (recon.links, recon.breaks)"
    )
    decide.add_argument(
        "action", choices=["confirm", "reject", "explain"], help="confirm or reject a link; explain a break"
    )
    decide.add_argument("--tenant", required=True)
    subject = decide.add_mutually_exclusive_group(required=True)
    subject.add_argument("--link", help="a link_id of recon.links (confirm, reject)")
    subject.add_argument("--break", dest="break_id", help="a break_id of recon.breaks (explain)")
    decide.add_argument("--by", help="who decides (default: the login name)")
    decide.add_argument("--why", required=True, help="why: kept in the log with the decision")

    verify = commands.add_parser("verify", help="recompute every hash chain of the log; exit 1 if one is broken")
    verify.add_argument("--tenant")

    commands.add_parser("demo", help="sync the demo tenants twice against the sandbox and summarise")

    as_of = commands.add_parser("as-of", help="one entity's mirror for a tenant as it stood at an instant")
    as_of.add_argument("--tenant", required=True)
    as_of.add_argument("--rail", choices=rail_names, default=DEFAULT_RAIL)
    as_of.add_argument("--entity", required=True, help='"bills", "Bill" or "bill"; likewise for every entity')
    as_of.add_argument("--at", required=True, help="ISO 8601 with a timezone, e.g. 2026-03-31T23:59:59Z")
    as_of.add_argument("--output", help="write every row to a new .parquet or .csv file instead of printing")
    as_of.add_argument("--force", action="store_true", help="replace an existing output file")
    history = commands.add_parser("history", help="every logged version of one object, oldest first")
    history.add_argument("--tenant", required=True)
    history.add_argument("--rail", choices=rail_names, default=DEFAULT_RAIL)
    history.add_argument("--entity", required=True)
    history.add_argument("--id", required=True, dest="object_id", help="the rail's id of the object (QBO: its Id)")

    analyst = commands.add_parser(
        "analyst-db", help="print the read side's DuckDB file analysts open (never locks the ledger)"
    )
    analyst.add_argument("--tenant", help="one tenant's share instead: its folder holds no other tenant's rows")

    export = commands.add_parser(
        "export-tenant", help="one tenant's log, mirrors, history and marts as a new read-only DuckDB file"
    )
    export.add_argument("tenant_id")
    export.add_argument("--output", required=True, help="the new .duckdb file (an existing file is refused)")
    export.add_argument("--force", action="store_true", help="replace an existing output file")
    return parser


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--credentials", choices=["sandbox", "env"], default="sandbox")
    parser.add_argument(
        "--refresh-token-env",
        help="QBO or Ramp with --credentials env: the variable holding the company's or business's first refresh token",
    )
    parser.add_argument(
        "--access-token-env", help="Plaid with --credentials env: the variables holding each item's access token, "
        "comma-separated in the order of the items"
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _dispatch(_parser().parse_args(argv))
    except (ids.InvalidInput, TenantError, WarehouseError, DagsterHomeError) as exc:
        print(f"ledger-pipeline: error: {warehouse.one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the last resort for a file problem: one line naming the file, never a traceback
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"ledger-pipeline: error: {where}{exc.strerror or warehouse.one_line(exc)}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        return _sandbox(args)
    if args.command == "tenants":
        return _tenants(args)
    if args.command == "approve-sync":
        return _approve_sync(args)
    if args.command == "decide":
        return _decide(args)
    if args.command == "verify":
        from ledger_pipeline.commands import verify_command

        return verify_command(args.tenant)
    if args.command == "demo":
        from ledger_pipeline.demo import run_demo

        return run_demo()
    if args.command == "as-of":
        return _as_of(args)
    if args.command == "history":
        return _history(args)
    if args.command == "analyst-db":
        return _analyst_db(args.tenant)
    if args.command == "export-tenant":
        return _export_tenant(args)
    raise AssertionError(args.command)


def _sandbox(args: argparse.Namespace) -> int:
    """The sandboxes share one clock (the QBO sandbox's state file): advancing it moves every rail's world."""
    if args.sandbox_command == "advance":
        from ledger_pipeline.rails.qbo.sandbox import advance_shared_clock

        days = ids.advance_days(args.days)
        print(f"sandbox clock now {advance_shared_clock(settings.state_dir(), timedelta(days=days)).isoformat()}")
        return 0
    if args.sandbox_command == "breaks":
        print(json.dumps(_sandbox_breaks(args.tenant), indent=2))
        return 0
    rail = rails.rail(args.rail)
    if args.sandbox_command == "credentials":
        tenant = TenantRegistry(settings.tenants_path()).get(ids.tenant_id(args.tenant))
        connection = _connected(tenant, rail)
        if connection.credentials != "sandbox":
            raise TenantError(f"tenant {tenant.tenant_id} reaches {rail.title} with its own credentials, not the sandbox's")
        print(json.dumps(rail.sandbox().credentials(connection, settings.state_dir()), indent=2))
        return 0
    sandbox = rail.sandbox()
    host = ids.loopback_host(args.host)
    port = ids.port(args.port if args.port is not None else sandbox.DEFAULT_PORT)
    sandbox.serve_shared(settings.state_dir(), host, port)
    return 0


def _sandbox_breaks(tenant_id: str | None) -> list[dict]:
    """The injected breaks of each tenant whose books are a QBO sandbox company, at the shared clock."""
    from ledger_pipeline.rails.qbo.sandbox import shared_sandbox
    from ledger_pipeline.world.ground_truth import injected_breaks

    registry = TenantRegistry(settings.tenants_path())
    if tenant_id is not None:
        tenant = registry.get(ids.tenant_id(tenant_id))
        books = _connected(tenant, rails.rail(DEFAULT_RAIL))
        if books.credentials != "sandbox":
            raise TenantError(
                f"tenant {tenant.tenant_id}'s books are a real QBO company: the sandbox broke nothing there"
            )
        tenants = [tenant]
    else:
        tenants = [t for t in registry.load().values()
                   if (c := t.connection(DEFAULT_RAIL)) is not None and c.credentials == "sandbox"]  # fmt: skip
    box = shared_sandbox(settings.state_dir())
    return [found for tenant in tenants
            for found in injected_breaks(box, tenant.connection(DEFAULT_RAIL).account_id, tenant.tenant_id)]


def _connected(tenant: Tenant, rail: Rail) -> Connection:
    connection = tenant.connection(rail.name)
    if connection is None:
        connected = ", ".join(tenant.rails) or "none"
        raise TenantError(f"tenant {tenant.tenant_id} is not connected to {rail.name} (connected: {connected})")
    return connection


def _connection(rail: Rail, account: str, args: argparse.Namespace) -> Connection:
    """A connection from the command line, refusing a non-demo account for sandbox credentials by name."""
    if args.refresh_token_env is not None and args.access_token_env is not None:
        raise ids.InvalidInput(
            "--refresh-token-env is QBO's and Ramp's, --access-token-env Plaid's: give the one of the rail"
        )
    secret_env = args.refresh_token_env if args.refresh_token_env is not None else args.access_token_env
    connection = rail.connection_from_cli(account, args.credentials, secret_env)
    if args.credentials == "sandbox":
        demo = rail.sandbox().demo_accounts()
        for account_id in getattr(connection, "account_ids", (connection.account_id,)):
            if account_id not in demo:
                known = ", ".join(f"{a} ({name})" for a, name in demo.items())
                raise TenantError(
                    f"{rail.account_noun} {account_id} is not a sandbox account; sandbox accounts: {known}"
                )
    return connection


def _described(connection: Connection) -> str:
    """One connection as `tenants list` shows it: the rail, its account(s), where credentials come from, and any
    part that needs a person (a Plaid item's bank login)."""
    rail = rails.rail(connection.rail)
    describe = getattr(connection, "describe", None)
    shown = describe() if describe is not None else f"{rail.account_noun.split()[-1]} {connection.account_id}"
    return f"{connection.rail} {shown} ({connection.credentials})"


def _tenants(args: argparse.Namespace) -> int:
    registry = TenantRegistry(settings.tenants_path())
    if args.tenants_command == "list":
        for tenant in registry.load().values():
            parts = [_described(c) for c in tenant.connections] or ["no rails"]
            print("\t".join([tenant.tenant_id, *parts]))
        return 0
    if args.tenants_command == "retire":
        from ledger_pipeline.commands import remove_partition

        retired = registry.retire(ids.tenant_id(args.tenant_id))
        remove_partition(retired.tenant_id)
        print(
            f"tenant {retired.tenant_id} retired: nothing syncs it now; its log, mirrors and history stay in the "
            "ledger, and the id can only come back with the same company"
        )
        return 0
    tenant_id = ids.tenant_id(args.tenant_id)
    if args.tenants_command == "disconnect":
        gone = registry.disconnect(tenant_id, rails.rail(args.rail).name)
        print(f"tenant {tenant_id} disconnected from {gone.rail} {gone.account_id}: its syncs stop, its log stays")
        return 0
    if args.tenants_command == "connect":
        rail = rails.rail(args.rail)
        connection = _connection(rail, args.account, args)
        changed = registry.connect(tenant_id, connection)
        print(f"tenant {tenant_id} {'connected to' if changed else 'already connected to'} "
              f"{rail.name} {connection.account_id}")  # fmt: skip
        return 0
    given = {name: getattr(args, f"account_{name}") for name in rails.all_rails()}
    connections = [_connection(rails.rail(n), account, args) for n, account in given.items() if account is not None]
    if not connections:
        options = " and/or ".join(r.account_option for r in rails.all_rails().values())
        raise ids.InvalidInput(f"tenants add: name at least one rail account: {options}")
    tenant = Tenant(tenant_id, *connections)
    if dagster_home.configured() is not None:
        dagster_home.check()  # a bad DAGSTER_HOME is refused before the registry changes
    added = registry.add(tenant)
    from ledger_pipeline.commands import add_partition

    add_partition(tenant.tenant_id)
    accounts = ", ".join(
        f"{rails.rail(c.rail).account_noun} {', '.join(getattr(c, 'account_ids', (c.account_id,)))}" for c in connections
    )
    print(f"tenant {tenant.tenant_id} {'registered' if added else 'already registered'} ({accounts})")
    return 0


def _approve_sync(args: argparse.Namespace) -> int:
    """Record the approval in the ledger; the next sync the breaker stops for that tenant (and entity) uses it."""
    import getpass

    from ledger_pipeline import audit
    from ledger_pipeline.lib import breaker

    tenant = ids.tenant_id(args.tenant)
    rail = rails.rail(args.rail)
    entity = audit.entity_named(rail, ids.entity_name(args.entity)).name if args.entity is not None else None
    by = args.by if args.by is not None else getpass.getuser()
    conn = warehouse.connect(settings.duckdb_path())
    try:
        if tenant not in audit.logged_tenants(conn):
            raise ids.InvalidInput(f"tenant {tenant!r} has nothing in the log: there is no sync to approve")
        try:
            approval_id = breaker.approve(conn, tenant, args.rail, entity, by, args.reason)
        except ValueError as exc:
            raise ids.InvalidInput(str(exc)) from None
    finally:
        conn.close()
    scope = f"entity {entity}" if entity else "every entity of the next run"
    print(f"approval #{approval_id} recorded by {by}: the next {args.rail} sync of tenant {tenant} ({scope}) that the "
          "circuit breaker stops goes through")  # fmt: skip
    return 0


def _decide(args: argparse.Namespace) -> int:
    """`confirm` and `reject` name a link, `explain` a break: the other is refused before anything runs."""
    import getpass

    from ledger_pipeline.commands import decide_command

    wanted = "link" if args.action in ("confirm", "reject") else "break"
    subject = args.link if wanted == "link" else args.break_id
    if subject is None:
        raise ids.InvalidInput(f"decide {args.action}: name the {wanted} with --{wanted}")
    by = args.by if args.by is not None else getpass.getuser()
    return decide_command(args.action, ids.tenant_id(args.tenant), subject, by, args.why)


def _as_of(args: argparse.Namespace) -> int:
    """Print (or write) the macro's answer; every argument is checked before the ledger is opened."""
    from ledger_pipeline import audit

    rail = rails.rail(args.rail)
    tenant, entity = ids.tenant_id(args.tenant), audit.entity_named(rail, ids.entity_name(args.entity))
    try:
        at = audit.instant(ids.timestamp_text(args.at))
    except OverflowError:
        raise ids.InvalidInput(f"timestamp {ids.shown(args.at)} is out of range once converted to UTC") from None
    if args.force and args.output is None:
        raise ids.InvalidInput("as-of: --force only applies with --output")
    output = None
    if args.output is not None:
        output = output_files.checked_output(args.output, audit.OUTPUT_SUFFIXES, force=args.force)
    with warehouse.reading(settings.duckdb_path()) as conn:
        known = audit.logged_tenants(conn)
        frame = audit.as_of(conn, tenant, rail, entity, at)
    if tenant not in known:
        return _not_found(f"tenant {tenant!r} has nothing in the log (logged tenants: {', '.join(known) or 'none'})")
    label = f"{entity.table} of tenant {tenant} as of {at.isoformat()}"
    if output is None:
        import polars as pl

        width = max(100, shutil.get_terminal_size().columns)
        with pl.Config(tbl_rows=20, tbl_hide_column_data_types=True, tbl_width_chars=width):
            print(frame)
        print(f"{frame.height} {label}")
        return 0
    replaced = output_files.write_output(output, lambda tmp: audit.write_frame(frame, tmp), force=args.force)
    print(f"wrote {frame.height} {label} to {output}{' (replaced the existing file)' if replaced else ''}")
    return 0


def _history(args: argparse.Namespace) -> int:
    """Print each version of one object with what changed, the sync source and the run that logged it."""
    from ledger_pipeline import audit

    rail = rails.rail(args.rail)
    tenant, entity = ids.tenant_id(args.tenant), audit.entity_named(rail, ids.entity_name(args.entity))
    object_id = rail.object_id(args.object_id)
    with warehouse.reading(settings.duckdb_path()) as conn:
        versions = audit.object_history(conn, tenant, rail, entity, object_id)
    if not versions:
        return _not_found(f"no {entity.name} with Id {object_id} in the log of tenant {tenant!r}")
    print(f"{entity.name} {object_id} of tenant {tenant}: {len(versions)} version(s), oldest first")
    for v in versions:
        print(
            f"seq {v.seq}  {v.op}  source={v.source}  {rail.version_label}={v.source_version}  "
            f"{rail.name}_updated={_iso(v.source_updated_at)}  observed={_iso(v.observed_at)}  run={v.run_id}"
        )
        if v.op != "updated":
            print(f"    {v.op}")
        for change in v.changes:
            print(f"    {change.path}: {_json(change.old)} -> {_json(change.new)}")
    return 0


def _analyst_db(tenant: str | None) -> int:
    """The path of the newest generation's views file (all tenants, or one tenant's share) on stdout."""
    from ledger_pipeline.lib.read_side.layout import ReadSide

    read_side = ReadSide(settings.read_dir(settings.duckdb_path()))
    path = read_side.entry if tenant is None else read_side.tenant_entry(ids.tenant_id(tenant))
    if not path.is_file():
        whose = "" if tenant is None else f" for tenant {tenant}"
        return _not_found(f"no read side{whose} in {read_side.root} yet: a sync publishes it")
    print(path)
    if tenant is not None:  # its views name their files relative to its folder, so the folder can be handed over
        print(f"open it from its folder: cd {path.parent} && duckdb -readonly {path.name}", file=sys.stderr)
    return 0


def _export_tenant(args: argparse.Namespace) -> int:
    """Write the export, then say what it holds, that it verifies and that it is read-only."""
    from ledger_pipeline import export

    tenant, ledger = ids.tenant_id(args.tenant_id), settings.duckdb_path()
    output = export.export_path(args.output, ledger=ledger, force=args.force)
    try:
        report = export.export_tenant(ledger, tenant, output, force=args.force)
    except export.NothingToExport as exc:
        return _not_found(str(exc))
    log_rows = report.rows.get("raw.entity_log", 0)
    other = ", ".join(f"{name} {count}" for name, count in report.rows.items() if name != "raw.entity_log")
    print(f"{'replaced' if report.replaced else 'wrote'} {report.path}: tenant {tenant}, {log_rows} log rows; {other}")
    if report.skipped:
        print(f"not exported (no tenant_id column): {', '.join(report.skipped)}")
    checked = report.verify
    print(f"verify: OK - {checked.rows} log rows in {checked.chains} chains intact (export of tenant {tenant})")
    mode = export.file_mode(report.path)
    print(f"{report.path} is read-only (mode {mode:o}); analysts open it with duckdb.connect(path, read_only=True)")
    return 0


def _not_found(message: str) -> int:
    print(f"ledger-pipeline: {message}", file=sys.stderr)
    return 1


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "-"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    sys.exit(main())
