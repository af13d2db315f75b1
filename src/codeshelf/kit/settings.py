"""Runtime settings, read from the environment (prefix ``CODESHELF_``) and a local ``.env``."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from codeshelf.kit.clock import parse_holidays
from codeshelf.kit.money import Money, parse_per_currency

# Used only when CODESHELF_DEMO is true and no secret was configured.
DEMO_SECRET_KEY = "codeshelf-demo-secret-do-not-use-in-production"  # noqa: S105


class MissingSecretKeyError(RuntimeError):
    """Raised when the server would start without an encryption secret."""


# The default rate-limit store: each server process counts on its own.
RATE_LIMITS_IN_MEMORY = "memory://"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CODESHELF_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./codeshelf.db"
    secret_key: SecretStr | None = None
    # Earlier secrets, comma separated: rows encrypted under them stay readable after rotation.
    previous_secret_keys: SecretStr | None = None
    demo: bool = False

    max_order_quantity: int = Field(default=10_000, ge=1)
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    idempotency_retention_hours: int = Field(default=24, ge=24)
    # How long an unfinished request holds its idempotency key before a retry may take it over.
    idempotency_lock_seconds: int = Field(default=60, ge=1)

    rate_limit_per_minute: int = Field(default=60, ge=1)
    # Per operator key, on the operator API (/api/v1/admin): scripts and the console's peers.
    operator_rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_storage: str = RATE_LIMITS_IN_MEMORY
    # Bad API keys (unknown, revoked, malformed; operator keys too) one client address may
    # present a minute; past it, every key from that address gets 429 until the minute is over.
    # The address is the connection's, or the one a trusted proxy names (`codeshelf serve
    # --forwarded-allow-ips`).
    auth_failures_per_minute: int = Field(default=10, ge=1)

    # Slow clients (`codeshelf serve`): a request's line and headers must have arrived this
    # many seconds after the connection opened or the request's first byte, and its body this
    # many seconds after its headers; else 408 and the connection is closed.
    client_header_timeout_seconds: float = Field(default=10.0, gt=0)
    client_body_timeout_seconds: float = Field(default=60.0, gt=0)

    # Claim evidence: screenshots are stored encrypted in this directory, not in the database.
    evidence_dir: Path = Path("./evidence")
    max_evidence_bytes: int = Field(default=5 * 1_048_576, ge=1024)
    # Claim requests carrying screenshots may be this big (the other requests: max_request_bytes).
    max_upload_bytes: int = Field(default=26 * 1_048_576, ge=1024)  # 5 screenshots of 5 MiB
    # Stock imports by upload: the file waits here until the worker imports it (then it is
    # removed); the worker must see the same directory. Uploads may be this big (streamed to
    # disk, never held in memory; only POST /api/v1/admin/stock/imports and the console's
    # upload take them).
    import_dir: Path = Path("./imports")
    max_import_bytes: int = Field(default=512 * 1_048_576, ge=1024)
    # A running import job whose worker wrote no progress for this long is taken to be
    # orphaned by a crash and queued again (a worker writes its progress every second).
    import_stall_seconds: int = Field(default=600, ge=1)
    # Allow webhook endpoints on private, loopback and link-local addresses, and plain http:
    # for development and tests only.
    webhook_allow_private: bool = False
    # How often `codeshelf worker` looks for due deliveries when there was nothing to do.
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    # On SIGTERM, how long `codeshelf serve` waits for the requests in flight to be answered,
    # and `codeshelf worker` for its deliveries in flight to end (each ends by its 15 s deadline)
    # before exiting; keep it below the supervisor's own stop time-out (systemd 90 s, k8s 30 s).
    shutdown_grace_seconds: int = Field(default=25, ge=1)

    # Backorders: the longest an order may wait for stock (a partner may ask for less).
    backorder_max_hours: int = Field(default=72, ge=1)
    # Manual review: orders of more codes than this go to an operator first (None: no limit).
    # A partner's own limits, set with `codeshelf partner limits`, take precedence.
    review_quantity_over: int | None = Field(default=None, ge=1)
    # ...and orders far above the partner's usual size: more than this many times the median of
    # its last 20 orders (once it has 5), and more than `review_unusual_floor` codes.
    review_unusual_factor: int = Field(default=10, ge=2)
    review_unusual_floor: int = Field(default=100, ge=1)
    # Delivered webhook attempts and events older than this are deleted by the worker.
    event_retention_days: int = Field(default=90, ge=1)
    # Where people reach this server: the start of the links codeshelf prints (invitations).
    public_url: str = "http://127.0.0.1:8000"
    # The partner portal's sessions end after this long idle, and this long in all.
    web_session_idle_minutes: int = Field(default=30, ge=1)
    web_session_hours: int = Field(default=12, ge=1)
    # The operator console (/ops/) answers only clients in these networks, e.g.
    # "10.0.0.0/8,192.168.1.0/24" (everyone else gets 404); empty: every network.
    ops_allow_networks: str = ""
    # Four eyes: a deposit above this, per currency, waits for a second finance or admin member,
    # e.g. "USD 5000.00,EUR 5000.00"; a currency not named needs no second person.
    deposit_approval_over: str = ""

    # serve and worker also append each log line, as JSON, to this file (none: stderr only).
    log_file: Path | None = None

    # Days the upstream SLA clock skips besides weekends, e.g. "2026-12-25,2027-01-01".
    holidays: str = ""

    @field_validator("holidays")
    @classmethod
    def _valid_holidays(cls, value: str) -> str:
        parse_holidays(value)
        return value

    @field_validator("ops_allow_networks")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("deposit_approval_over")
    @classmethod
    def _valid_deposit_thresholds(cls, value: str) -> str:
        parse_per_currency(value)
        return value

    def deposit_thresholds(self) -> dict[str, Money]:
        """Per currency, the largest deposit credited without a second person (four eyes)."""
        return parse_per_currency(self.deposit_approval_over)

    def ops_networks(self) -> list[IPv4Network | IPv6Network]:
        return parse_networks(self.ops_allow_networks)

    def holiday_dates(self) -> frozenset[date]:
        return parse_holidays(self.holidays)

    def require_secret(self) -> str:
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        if self.demo:
            return DEMO_SECRET_KEY
        raise MissingSecretKeyError(
            "CODESHELF_SECRET_KEY is not set. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` "
            "or set CODESHELF_DEMO=true for a throwaway demo."
        )

    def previous_secrets(self) -> list[str]:
        if self.previous_secret_keys is None:
            return []
        raw = self.previous_secret_keys.get_secret_value()
        return [part.strip() for part in raw.split(",") if part.strip()]


def parse_networks(value: str) -> list[IPv4Network | IPv6Network]:
    """A comma-separated list of CIDR networks (a bare address is its own /32 or /128)."""
    return [ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
