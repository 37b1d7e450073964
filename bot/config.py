"""Configuration: one TOML file, overridden by `SIAGA_SECTION__KEY` variables.

Operators keep one `config.toml` per deployment; the key names are part of the
user-facing contract (DESIGN.md), so they never change here. A wrong value is
reported with its dotted key and what is allowed, and a missing token only
troubles the commands that talk to Telegram.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Minutes = Annotated[float, Field(ge=0)]
log = logging.getLogger("siaga.config")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TelegramSettings(Section):
    token: SecretStr | None = None
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    bot_username: str = "SiagaBot"
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_url: str | None = None
    webhook_path: str = "telegram"
    webhook_secret: SecretStr | None = None


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///siaga.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")
        return value


class OperationSettings(Section):
    timezone: str = "Asia/Jakarta"
    language: str = Field(default="id", pattern="^(id|en)$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Jakarta") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RemindersSettings(Section):
    before_minutes: list[Minutes] = [1440, 60, 0]


class CheckinSettings(Section):
    """A location counts at the time it was sent (bot/services/checkin/), whenever the bot reads it.

    `max_location_age_seconds` once refused a location read more than that
    long after it was sent, which counted as absent everyone whose location
    waited at Telegram while the bot was down. It is still accepted, so that
    operators' files keep loading, and ignored with a warning: what is too
    old now follows from the shift (and Telegram's 24 hours), not from a delay.
    """

    grace_minutes: Minutes = 15
    geofence_meters: float = Field(default=300, gt=0)
    opens_before_minutes: Minutes = 120
    max_location_age_seconds: float | None = Field(default=None, gt=0)

    @field_validator("max_location_age_seconds")
    @classmethod
    def _obsolete_age(cls, value: float | None) -> float | None:
        if value is not None:
            log.warning(
                "checkin.max_location_age_seconds is obsolete and ignored: a location counts at the time it "
                "was sent; remove the key"
            )
        return value


class AckTimeouts(Section):
    tinggi: Minutes = 5
    sedang: Minutes = 15
    rendah: Minutes = 60


class EscalationSettings(Section):
    ack_timeout_minutes: AckTimeouts = AckTimeouts()
    resolve_reminder_minutes: Minutes = 30


class SilentMinutes(Section):
    """No position for this long is `hilang_sinyal`; on water there is often no signal for a long while."""

    darat: Minutes = Field(default=10, gt=0)
    air: Minutes = Field(default=45, gt=0)


SeverityName = Literal["rendah", "sedang", "tinggi"]


class EscortSeverity(Section):
    berhenti: SeverityName = "sedang"
    hilang_sinyal: SeverityName = "sedang"
    terlambat: SeverityName = "rendah"
    menyimpang: SeverityName = "tinggi"

    def of(self, kind: str) -> str:
        """The severity of an alert kind (an `EscortAlertKind` value)."""
        return str(getattr(self, kind))


class EscortSettings(Section):
    """Pengawalan: when an escort underway has stopped, gone silent, is late or off its route, and when it arrived."""

    stop_minutes: Minutes = Field(default=15, gt=0)
    stop_radius_meters: float = Field(default=200, gt=0)
    silent_minutes: SilentMinutes = SilentMinutes()
    arrive_radius_meters: float = Field(default=300, gt=0)
    corridor_meters: float = Field(default=3000, ge=0)
    severity: EscortSeverity = EscortSeverity()


class StaffingPattern(Section):
    """`police` and `linmas` guard `tps` polling stations together."""

    police: int = Field(ge=0)
    linmas: int = Field(ge=0)
    tps: int = Field(ge=1)


class StaffingSettings(Section):
    kurang_rawan: StaffingPattern = StaffingPattern(police=2, linmas=10, tps=5)
    rawan: StaffingPattern = StaffingPattern(police=2, linmas=4, tps=2)
    sangat_rawan: StaffingPattern = StaffingPattern(police=2, linmas=2, tps=1)

    def for_kerawanan(self, kerawanan: str) -> StaffingPattern:
        return getattr(self, kerawanan)


class RegistrationSettings(Section):
    code_ttl_hours: float = Field(default=72, gt=0)
    max_failures_per_hour: int = Field(default=5, ge=1)


class DeliverySettings(Section):
    global_per_second: float = Field(default=30, gt=0)
    private_per_second: float = Field(default=1, gt=0)
    group_per_minute: float = Field(default=20, gt=0)
    retry_deadline_minutes: Minutes = 60
    poll_seconds: float = Field(default=0.5, gt=0)
    lease_seconds: float = Field(default=120, gt=0)
    jitter_margin_seconds: float = Field(default=0.01, ge=0, le=0.5)


class SchedulerSettings(Section):
    """How often each sweep wakes; each is idempotent, so a missed tick only delays."""

    escalation_seconds: float = Field(default=2, gt=0)
    reminders_seconds: float = Field(default=60, gt=0)
    missed_checkins_seconds: float = Field(default=60, gt=0)
    broadcast_reports_seconds: float = Field(default=30, gt=0)
    escort_alerts_seconds: float = Field(default=15, gt=0)
    """An escort's alert due is raised at most this late: well within the minute `berhenti` may take past
    `escort.stop_minutes`."""
    live_locations_seconds: float = Field(default=3, gt=0)
    """A group's share of its limit is one live-location call every 6 s: a pass every 3 s spends it as it comes."""


class IntakeSettings(Section):
    """`durable = false` accepts updates before they are stored, as Siaga did before the inbox: for measuring
    what the inbox costs (bench/checkin_storm.py), never for an operation."""

    durable: bool = True


class HealthSettings(Section):
    """Each worker's HTTP endpoint: /healthz (alive), /readyz (database reachable), /metrics (Prometheus)."""

    enabled: bool = True
    listen: str = "127.0.0.1"
    port: int = Field(default=9180, ge=1, le=65535)


class LoggingSettings(Section):
    level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SIAGA_", env_nested_delimiter="__", extra="forbid", nested_model_default_partial_update=True
    )

    telegram: TelegramSettings = TelegramSettings()
    database: DatabaseSettings = DatabaseSettings()
    operation: OperationSettings = OperationSettings()
    reminders: RemindersSettings = RemindersSettings()
    checkin: CheckinSettings = CheckinSettings()
    escalation: EscalationSettings = EscalationSettings()
    staffing: StaffingSettings = StaffingSettings()
    escort: EscortSettings = EscortSettings()
    registration: RegistrationSettings = RegistrationSettings()
    delivery: DeliverySettings = DeliverySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    intake: IntakeSettings = IntakeSettings()
    health: HealthSettings = HealthSettings()
    logging: LoggingSettings = LoggingSettings()

    toml_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path))
        return tuple(sources)

    def require_token(self) -> str:
        """The token, or a ConfigError for the commands that cannot work without it."""
        if self.telegram.token is None or not self.telegram.token.get_secret_value():
            raise ConfigError("telegram.token is required: set it in the config file or SIAGA_TELEGRAM__TOKEN")
        return self.telegram.token.get_secret_value()


class ConfigError(Exception):
    """A configuration problem, worded for the operator who has to fix the file."""


def load_settings(path: str | os.PathLike[str] | None = "config.toml", **overrides: Any) -> Settings:
    """Read `path` if it exists (a named file that is missing is an error), then the environment."""
    toml_path: Path | None = None
    if path is not None:
        toml_path = Path(path)
        if not toml_path.exists():
            if Path(path) != Path("config.toml"):
                raise ConfigError(f"configuration file {toml_path} does not exist")
            toml_path = None

    class _Settings(Settings):
        pass

    _Settings.toml_path = toml_path

    try:
        return _Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_errors(error)) from None
    except ValueError as error:  # a TOML syntax error
        raise ConfigError(f"{toml_path}: {error}") from None


def describe_errors(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"{key}: {message} (got {problem.get('input')!r})")
    return "invalid configuration:\n  " + "\n  ".join(lines)
