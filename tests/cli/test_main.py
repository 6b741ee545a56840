"""cli.main: the exit-code table, the lazy parser, options anywhere on the line, help on every flag."""

from __future__ import annotations

import argparse
import json
import socket

import pytest

from vos_service import __version__
from vos_service.cli import main
from vos_service.cli import main as cli_main
from vos_service.cli.exit_codes import TABLE, CliError, ExitCode, exit_code_for
from vos_service.cli.main import COMMANDS, build_parser, command_in
from vos_service.config import setting_field


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_usage_errors_exit_2_through_argparse(capsys):
    for argv in ([], ["nope"], ["watch", "--count", "many"], ["stream"], ["train", "eval", "--clips", "1"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == ExitCode.USAGE, argv


def test_version_and_help_exit_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and all(name in out for name in COMMANDS)


def test_bad_input_is_2_unavailable_is_3_refused_is_1(tmp_path, capsys):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"streams": {"queue_size": 0}}))
    assert main(["serve", "--settings", str(bad)]) == ExitCode.USAGE  # before any model is built
    assert main(["watch", "cam-1", "--redis-url", f"redis://127.0.0.1:{_closed_port()}/0"]) == ExitCode.UNAVAILABLE
    assert main(["prompt", "--server", f"127.0.0.1:{_closed_port()}", "--stream-id", "cam", "--obj-id", "1",
                 "--point", "1,1"]) == ExitCode.UNAVAILABLE
    assert main(["eval", str(tmp_path / "none"), str(tmp_path)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(line.startswith("error: ") for line in err.splitlines())


def test_errors_in_the_table_print_one_line(monkeypatch, capsys):
    from vos_service.publish.embedded import RedisLaunchError
    from vos_service.service import Service

    async def no_redis(self):
        raise RedisLaunchError("no redis-server binary (install the [embedded-redis] extra)")

    monkeypatch.setattr(Service, "start", no_redis)
    assert main(["serve", "--port", "0", "--no-console"]) == ExitCode.UNAVAILABLE
    assert capsys.readouterr().err == "error: no redis-server binary (install the [embedded-redis] extra)\n"


def test_ctrl_c_exits_130_without_a_traceback_and_a_bug_keeps_its_traceback(monkeypatch, capsys):
    from vos_service.cli import weights

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(weights, "_list", interrupted)
    assert main(["weights", "list"]) == ExitCode.INTERRUPTED == 130
    assert "Traceback" not in capsys.readouterr().err

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(weights, "_list", broken)
    assert main(["weights", "list"]) == ExitCode.INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_the_table_maps_known_errors_and_leaves_bugs_out():
    from vos_service.config import SettingsError
    from vos_service.engine.errors import ModelConfigError
    from vos_service.weights.checkpoints import CheckpointUnavailableError, CheckpointVerificationError

    assert exit_code_for(CliError("x", ExitCode.REFUSED)) == ExitCode.REFUSED
    assert exit_code_for(SettingsError("x")) == ExitCode.USAGE
    assert exit_code_for(ModelConfigError("x")) == ExitCode.USAGE
    assert exit_code_for(CheckpointUnavailableError("x")) == ExitCode.UNAVAILABLE  # an EngineError, more specific
    assert exit_code_for(CheckpointVerificationError("x")) == ExitCode.REFUSED
    assert exit_code_for(FileNotFoundError("x")) == ExitCode.USAGE
    assert exit_code_for(ConnectionRefusedError("x")) == ExitCode.UNAVAILABLE
    assert exit_code_for(ValueError("x")) is None and exit_code_for(KeyError("x")) is None
    assert len({(m, c) for m, c, _ in TABLE}) == len(TABLE)


def test_log_level_anywhere_on_the_line():
    for argv in (["--log-level", "DEBUG", "weights", "list"], ["weights", "--log-level", "debug", "list"],
                 ["weights", "list", "--log-level", "debug"], ["weights", "list", "-v"]):
        args = build_parser([command_in(argv)]).parse_args(argv)
        assert args.log_level == ("info" if "-v" in argv else "debug"), argv
    assert not hasattr(build_parser(["weights"]).parse_args(["weights", "list"]), "log_level")  # the default
    assert command_in(["--log-level", "info", "watch", "x"]) == "watch" and command_in(["--version"]) is None


def _actions(parser: argparse.ArgumentParser, path: str = "vos-service"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def test_every_flag_has_help_and_shows_its_default():
    for path, action in _actions(build_parser(list(COMMANDS))):
        what = f"{path} {'/'.join(action.option_strings) or action.dest}"
        assert action.help and action.help != argparse.SUPPRESS, what
        takes_value = action.nargs != 0 and not isinstance(action, argparse._StoreConstAction)
        if action.option_strings and takes_value and not action.required and not isinstance(
                action, argparse._AppendAction):
            assert "default" in action.help, what


def test_flags_backed_by_settings_show_the_settings_default():
    from vos_service.cli import serve

    parser = build_parser(["serve"])
    helps = {a.option_strings[0]: a.help for _, a in _actions(parser) if a.option_strings}
    for flag, key in serve.FLAGS + serve.SECURITY_FLAGS:
        assert f"(setting {key})" in helps[flag], flag
    port = setting_field("server.port")[1]
    assert f"default {port} " in helps["--port"]
    args = parser.parse_args(["serve", "--port", "0", "--no-redis", "--max-batch", "2"])
    settings = serve.settings_from_args(args)
    assert (settings.server.port, settings.redis.enabled, settings.scheduler.max_batch) == (0, False, 2)
    assert settings.console.enabled and settings.server.host == setting_field("server.host")[1]  # untouched


def test_client_flags_read_the_environment(monkeypatch):
    monkeypatch.setenv("VOS_SERVER", "camera-hub:6000")
    monkeypatch.setenv("VOS_REDIS_URL", "redis://:pw@hub:6379/0")
    assert build_parser(["stream"]).parse_args(["stream", "x.mp4"]).server == "camera-hub:6000"
    assert build_parser(["watch"]).parse_args(["watch", "cam"]).redis_url == "redis://:pw@hub:6379/0"
    monkeypatch.delenv("VOS_SERVER")
    host, port = setting_field("server.host")[1], setting_field("server.port")[1]
    assert build_parser(["prompt"]).parse_args(["prompt", "--stream-id", "a", "--obj-id", "1"]).server == \
        f"{host}:{port}"
    assert cli_main is main
