"""API keys from the console: ``python -m api.keys``. A composition root of its own (it reads
the settings and opens the database; it needs no other part of the stack running).

- ``create --role admin`` makes the first admin key of a fresh deployment (later keys are
  made with it through ``POST /admin/api-keys``); ``--merchant-id`` for a checkout key.
  The secret is printed once, on stdout; only its hash is stored.
- ``list`` and ``revoke KEY_ID``.
- ``dev --file .data/dev-api-keys.json``: what ``make run`` does on start — development keys
  (merchant ``dev-merchant``) written to the file as ``{"checkout": ..., "admin": ...}``, reused
  while they still work. For local development only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from payments.config import get_settings
from payments.db.engine import create_db_engine
from payments.db.models import Role
from payments.db.repositories.access import AccessRepository
from payments.requests import MerchantId

DEV_MERCHANT_ID = "dev-merchant"
_merchant_id = TypeAdapter(MerchantId)


def ensure_dev_keys(access: AccessRepository, path: Path, merchant_id: str) -> dict[str, str]:
    """The development keys in ``path`` if both still authenticate; else new ones (a checkout
    key of ``merchant_id`` and an admin key), written to ``path`` readable by the owner only."""
    if path.exists():
        try:
            keys = json.loads(path.read_text())
            if all(
                isinstance(keys.get(role), str) and access.authenticate(keys[role]) is not None
                for role in ("checkout", "admin")
            ):
                return {"checkout": keys["checkout"], "admin": keys["admin"]}
        except (OSError, ValueError):
            pass  # unreadable: make new ones
    _, checkout = access.create_key(role=Role.CHECKOUT, merchant_id=merchant_id, created_by=None)
    _, admin = access.create_key(role=Role.ADMIN, merchant_id=merchant_id, created_by=None)
    keys = {"checkout": checkout.secret, "admin": admin.secret}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle, indent=2)
        handle.write("\n")
    partial.replace(path)
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.keys", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key; prints its secret once")
    create.add_argument("--role", choices=[r.value for r in Role], required=True)
    create.add_argument("--merchant-id", help="required for a checkout key")
    commands.add_parser("list", help="list keys (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    dev = commands.add_parser("dev", help="development keys for make run (local only)")
    dev.add_argument("--file", type=Path, required=True)
    dev.add_argument("--merchant-id", default=DEV_MERCHANT_ID)
    args = parser.parse_args(argv)

    settings = get_settings()
    engine = create_db_engine(settings.database)
    access = AccessRepository(engine)
    try:
        if args.command == "create":
            role = Role(args.role)
            merchant = args.merchant_id
            if merchant is not None:
                merchant = _merchant_id.validate_python(merchant)
            if role == Role.CHECKOUT and merchant is None:
                parser.error("a checkout key needs --merchant-id")
            key, secret = access.create_key(role=role, merchant_id=merchant, created_by=None)
            print(
                f"created {key.role} key {key.key_id}" + (f" for {merchant}" if merchant else ""),
                file=sys.stderr,
            )
            print(secret.secret)  # the only time it is shown
        elif args.command == "list":
            for key in access.list_keys():
                state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                print(f"{key.key_id}  {key.role:<8}  {key.merchant_id or '-':<24}  {state}")
        elif args.command == "revoke":
            if access.revoke(args.key_id) is None:
                print(f"no key {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}", file=sys.stderr)
        else:
            if settings.gateway.environment != "local":
                parser.error("development keys are for the local sandbox only")
            ensure_dev_keys(access, args.file, _merchant_id.validate_python(args.merchant_id))
            print(f"development keys in {args.file}", file=sys.stderr)
    except ValidationError:
        parser.error("--merchant-id: letters, digits, '.', '_', '-' (at most 64)")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
