"""What every CLI command needs: settings, the database, the vault."""

from __future__ import annotations

from pydantic import ValidationError

from codeshelf.claims.evidence import EvidenceStore
from codeshelf.cli.output import fail
from codeshelf.kit import migrate
from codeshelf.kit.db import Database
from codeshelf.kit.settings import MissingSecretKeyError, Settings, get_settings
from codeshelf.kit.vault import Vault


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CODESHELF_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        fail(f"invalid settings: {problems}")


def database(*, migrate_if_behind: bool = False) -> Database:
    url = settings().database_url
    if migrate_if_behind:
        migrate.ensure_current(url)
    elif not migrate.is_current(url):
        fail("the database schema is not current; run `codeshelf migrate` first")
    return Database(url)


def vault() -> Vault:
    try:
        return Vault(settings().require_secret(), settings().previous_secrets())
    except MissingSecretKeyError as exc:
        fail(str(exc))


def evidence_store() -> EvidenceStore:
    return EvidenceStore(settings().evidence_dir, vault())
