"""Settings: types, ranges and unknown keys checked at start-up; VOS_* environment variables."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vos_service.config import Settings, SettingsError, setting_field
from vos_service.engine.types import PromptedPolicy


@pytest.mark.parametrize("data,field", [
    ({"streams": {"queue_size": 0}}, "streams.queue_size"),  # once accepted: stalled or crashed streams
    ({"streams": {"prompted_policy": "newest"}}, "streams.prompted_policy"),  # once INTERNAL on every open
    ({"streams": {"max_points": 0}}, "streams.max_points"),
    ({"streams": {"colour": 1}}, "streams.colour"),
    ({"stream": {}}, "stream"),
    ({"server": {"port": 70000}}, "server.port"),
    ({"model": {"dtype": "fp16"}}, "model.dtype"),
    ({"model": {"image_size": 500}}, "model.image_size"),
    ({"redis": {"url": "http://x"}}, "redis.url"),
    ({"scheduler": {"max_batch": "many"}}, "scheduler.max_batch"),
    ({"streams": {"max_frame_bytes": 64 << 20}}, "max_frame_bytes"),  # must fit in a message
])
def test_bad_settings_are_refused_naming_the_field(data, field):
    with pytest.raises(SettingsError, match=field.replace(".", r"\.")):
        Settings.from_mapping(data)


def test_defaults_overrides_and_types():
    s = Settings().with_overrides({"server.port": 0, "streams.prompted_policy": "recent"})
    assert s.server.port == 0 and s.streams.prompted_policy is PromptedPolicy.RECENT
    assert s.streams.memory_config().prompted_policy is PromptedPolicy.RECENT
    with pytest.raises(SettingsError, match="unknown setting"):
        s.with_overrides({"server.nope": 1})
    with pytest.raises(Exception):
        s.server.port = 1  # frozen


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("VOS_SERVER__PORT", "50099")
    monkeypatch.setenv("VOS_STREAMS__MAX_STREAMS", "3")
    s = Settings.from_mapping({"streams": {"queue_size": 2}})
    assert (s.server.port, s.streams.max_streams, s.streams.queue_size) == (50099, 3, 2)
    monkeypatch.setenv("VOS_STREAMS__QUEUE_SIZE", "0")
    with pytest.raises(SettingsError, match="streams.queue_size"):
        Settings.from_mapping({})


def test_serve_refuses_a_bad_settings_file_before_starting(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"streams": {"queue_size": 0}}))
    out = subprocess.run([sys.executable, "-m", "vos_service.cli", "serve", "--settings", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "streams.queue_size" in out.stderr and "Traceback" not in out.stderr


def test_identities_from_the_environment_and_the_public_address_rule(monkeypatch):
    monkeypatch.setenv("VOS_AUTH__IDENTITIES", '[{"name": "cam", "roles": ["camera"], "cert_cn": "cam.local"}]')
    s = Settings.from_mapping({"server": {"host": "0.0.0.0"}})  # identities configured: a public bind is fine
    assert s.auth.identities[0].name == "cam" and s.auth.configured
    monkeypatch.delenv("VOS_AUTH__IDENTITIES")
    with pytest.raises(SettingsError, match="not a loopback address"):
        Settings.from_mapping({"server": {"host": "0.0.0.0"}})
    for host in ("127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]"):
        Settings.from_mapping({"server": {"host": host}})
    with pytest.raises(SettingsError, match="tls_cert and tls_key"):
        Settings.from_mapping({"server": {"tls_cert": "a.pem"}})


def _sections():
    for name, info in Settings.model_fields.items():
        yield name, info.annotation


def test_every_setting_has_a_default_and_a_one_line_description():
    for section, cls in _sections():
        for name, field in cls.model_fields.items():
            key = f"{section}.{name}"
            description, default = setting_field(key)
            assert description and "\n" not in description, key
            assert not field.is_required() and default == getattr(cls(), name), key
    with pytest.raises(SettingsError, match="unknown setting"):
        setting_field("server.nope")
    with pytest.raises(SettingsError, match="unknown setting"):
        setting_field("nope.port")


def test_settings_files_that_cannot_be_read_are_one_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read settings file"):
        Settings.from_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SettingsError, match="cannot read settings file"):
        Settings.from_file(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(SettingsError, match="mapping of sections"):
        Settings.from_file(listed)


def test_the_console_rule_and_metrics_tls():
    with pytest.raises(SettingsError, match="console.host"):
        Settings.from_mapping({"console": {"host": "0.0.0.0"}})
    Settings.from_mapping({"console": {"host": "0.0.0.0", "enabled": False}})  # not served: no exposure
    Settings.from_mapping({"console": {"host": "0.0.0.0"}, "auth": {"allow_insecure_public": True}})
    with pytest.raises(SettingsError, match="metrics_tls need"):
        Settings.from_mapping({"server": {"metrics_tls": True}})


def test_reading_settings_imports_no_torch():
    probe = "import sys, vos_service.config as c; c.Settings(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_model_compile_setting_reaches_the_model_spec(monkeypatch):
    from vos_service.weights.selection import spec_from_settings

    monkeypatch.setenv("VOS_MODEL__COMPILE", "true")
    assert Settings().model.compile is True
    assert spec_from_settings(Settings().model).compile is True
    assert spec_from_settings(Settings().with_overrides({"model.compile": False}).model).compile is False
