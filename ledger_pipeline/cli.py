"""`ledger-pipeline`: the command line for operators and analysts."""

from __future__ import annotations

import argparse
from datetime import timedelta
import sys
from collections.abc import Sequence

from ledger_pipeline.lib import ids, settings
from ledger_pipeline.lib.tenants import QboConnection, Tenant, TenantError, TenantRegistry
from ledger_pipeline.lib.warehouse import WarehouseError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser("sandbox", help="the built-in QBO emulator").add_subparsers(
        dest="sandbox_command", required=True
    )
    serve = sandbox.add_parser("serve", help="serve the QBO sandbox over HTTP on localhost")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--host", default="127.0.0.1")
    advance = sandbox.add_parser("advance", help="move the shared sandbox clock forward so the books change")
    advance.add_argument("--days", type=float, default=1.0)

    tenants = commands.add_parser("tenants", help="the tenant registry").add_subparsers(
        dest="tenants_command", required=True
    )
    add = tenants.add_parser("add", help="register a tenant and add its Dagster partition")
    add.add_argument("tenant_id")
    add.add_argument("--qbo-realm", required=True, help="the QBO company (realm) id, digits only")
    add.add_argument("--credentials", choices=["sandbox", "env"], default="sandbox")
    add.add_argument("--refresh-token-env", help="with --credentials env: variable holding the first refresh token")
    tenants.add_parser("list", help="list registered tenants")

    verify = commands.add_parser("verify", help="recompute every hash chain of the log; exit 1 if one is broken")
    verify.add_argument("--tenant")

    commands.add_parser("demo", help="sync the demo tenants twice against the sandbox and summarise")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ids.InvalidInput, TenantError, WarehouseError) as exc:
        print(f"ledger-pipeline: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        from ledger_pipeline.defs.resources import shared_sandbox

        box = shared_sandbox(settings.state_dir())
        if args.sandbox_command == "advance":
            box.advance(timedelta(days=args.days))
            print(f"sandbox clock now {box.now.isoformat()}")
            return 0
        from ledger_pipeline.rails.qbo.sandbox.server import serve

        serve(box, args.host, args.port)
        return 0
    if args.command == "tenants":
        return _tenants(args)
    if args.command == "verify":
        from ledger_pipeline.commands import verify_command

        return verify_command(args.tenant)
    if args.command == "demo":
        from ledger_pipeline.demo import run_demo

        return run_demo()
    raise AssertionError(args.command)


def _tenants(args: argparse.Namespace) -> int:
    registry = TenantRegistry(settings.tenants_path())
    if args.tenants_command == "list":
        for tenant in registry.load().values():
            realm = tenant.qbo.realm_id if tenant.qbo else "-"
            source = tenant.qbo.credentials if tenant.qbo else "-"
            print(f"{tenant.tenant_id}\tqbo realm {realm}\tcredentials: {source}")
        return 0
    tenant = Tenant(
        ids.tenant_id(args.tenant_id),
        QboConnection(ids.qbo_realm_id(args.qbo_realm), args.credentials, args.refresh_token_env),
    )
    if args.credentials == "sandbox":
        from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES

        realms = {c.realm_id: c.name for c in DEMO_COMPANIES}
        if args.qbo_realm not in realms:
            known = ", ".join(f"{r} ({n})" for r, n in realms.items())
            raise TenantError(f"QBO realm {args.qbo_realm} is not a sandbox company; sandbox realms: {known}")
    added = registry.add(tenant)
    from ledger_pipeline.commands import add_partition

    add_partition(tenant.tenant_id)
    print(f"tenant {tenant.tenant_id} {'registered' if added else 'already registered'} (QBO realm {args.qbo_realm})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
