"""Configuration: defaults from DESIGN.md, TOML file, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


def test_defaults_are_the_documented_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings("config.toml")
    assert settings.telegram.base_url == "https://api.telegram.org/bot"
    assert settings.database.url == "sqlite+aiosqlite:///siaga.db"
    assert settings.operation.timezone == "Asia/Jakarta"
    assert settings.reminders.before_minutes == [1440, 60, 0]
    assert settings.checkin.grace_minutes == 15
    assert settings.checkin.geofence_meters == 300
    timeouts = settings.escalation.ack_timeout_minutes
    assert (timeouts.tinggi, timeouts.sedang, timeouts.rendah) == (5, 15, 60)
    assert settings.staffing.kurang_rawan.model_dump() == {"police": 2, "linmas": 10, "tps": 5}


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "siaga.toml"
    config.write_text(
        '[telegram]\ntoken = "from-file"\n[checkin]\ngrace_minutes = 0.1\n'
        "[escalation.ack_timeout_minutes]\ntinggi = 1\n"
    )
    monkeypatch.setenv("SIAGA_TELEGRAM__TOKEN", "from-env")
    monkeypatch.setenv("SIAGA_CHECKIN__GEOFENCE_METERS", "500")
    settings = load_settings(config)
    assert settings.require_token() == "from-env"
    assert settings.checkin.grace_minutes == 0.1
    assert settings.checkin.geofence_meters == 500
    assert settings.escalation.ack_timeout_minutes.tinggi == 1
    assert settings.escalation.ack_timeout_minutes.sedang == 15


def test_wrong_values_name_the_key_and_what_is_allowed(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[operation]\ntimezone = "Mars/Olympus"\n[checkin]\ngeofence_meters = -5\ncolour = "red"\n'
        '[database]\nurl = "mysql://x"\n'
    )
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert "operation.timezone: unknown time zone 'Mars/Olympus'" in message
    assert "checkin.geofence_meters: Input should be greater than 0" in message
    assert "checkin.colour: unknown key" in message
    assert "database.url: use sqlite+aiosqlite" in message


def test_missing_token_only_matters_to_commands_that_need_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIAGA_TELEGRAM__TOKEN", raising=False)
    settings = load_settings(None)
    with pytest.raises(ConfigError, match="telegram.token is required"):
        settings.require_token()


def test_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).parent.parent / "config.example.toml"
    settings = load_settings(example)
    text = example.read_text()
    for section, model in settings:
        for key in type(model).model_fields:
            assert f"{key} " in text or f"{key}=" in text or f"[{section}.{key}]" in text, f"{section}.{key}"


def test_escort_defaults_fractions_and_bad_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    escort = load_settings("config.toml").escort
    assert (escort.stop_minutes, escort.stop_radius_meters) == (15, 200)
    assert (escort.silent_minutes.darat, escort.silent_minutes.air) == (10, 45)
    assert (escort.arrive_radius_meters, escort.corridor_meters) == (300, 3000)
    assert [escort.severity.of(kind) for kind in ("berhenti", "hilang_sinyal", "terlambat", "menyimpang")] == [
        "sedang",
        "sedang",
        "rendah",
        "tinggi",
    ]
    config = tmp_path / "escort.toml"
    config.write_text("[escort]\nstop_minutes = 0.5\ncorridor_meters = 0\nsilent_minutes = { air = 1.5 }\n")
    escort = load_settings(config).escort
    assert (escort.stop_minutes, escort.corridor_meters) == (0.5, 0)
    assert (escort.silent_minutes.darat, escort.silent_minutes.air) == (10, 1.5)
    config.write_text(
        '[escort]\nstop_minutes = 0\ncorridor_meters = -1\nseverity = { berhenti = "parah" }\nsilent_minutes = { laut = 3 }\n'
    )
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert "escort.stop_minutes: Input should be greater than 0" in message
    assert "escort.corridor_meters: Input should be greater than or equal to 0" in message
    assert "escort.severity.berhenti: Input should be 'rendah', 'sedang' or 'tinggi'" in message
    assert "escort.silent_minutes.laut: unknown key" in message
