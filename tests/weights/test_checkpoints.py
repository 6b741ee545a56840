"""Checkpoint registry and downloader, against a real HTTP server on loopback."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import importlib.resources
import re
import socket
import threading
from pathlib import Path

import pytest
import torch

from vos_service.cli import main
from vos_service.cli.exit_codes import ExitCode
from vos_service.weights import checkpoints as ck

NAME = "sam2.1_hiera_tiny"
URL_PATH = f"/092824/{NAME}.pt"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (url path -> bytes), honouring ``Range: bytes=N-``
    unless ``server.honour_range`` is False; ``server.cut_at`` truncates bodies."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        srv = self.server
        srv.seen.append(dict(self.headers))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and srv.honour_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if srv.cut_at is not None:
            payload = payload[: srv.cut_at]
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def ckpt_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "fake.pt"
    torch.save({"model": {"w": torch.zeros(20_000)}}, path)  # ~80 KB: several reads
    return path.read_bytes()


@pytest.fixture
def server(ckpt_bytes: bytes, monkeypatch: pytest.MonkeyPatch):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files = {URL_PATH: ckpt_bytes}
    srv.seen, srv.honour_range, srv.cut_at = [], True, None
    srv.base_url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv(ck.BASE_URL_ENV, srv.base_url)
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(ck.CACHE_ENV, str(cache))
    return cache


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- registry ---------------------------------------------------------------


def test_every_config_ships_with_sam2() -> None:
    root = importlib.resources.files("sam2")
    for c in ck.list_checkpoints():
        assert root.joinpath(c.config).is_file(), c.config
    assert len({c.name for c in ck.list_checkpoints()}) == 8


def test_urls_follow_release_layout() -> None:
    assert ck.get_checkpoint("sam2.1_hiera_large").url(ck.DEFAULT_BASE_URL) == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt")
    assert ck.get_checkpoint("sam2_hiera_base_plus").url(ck.DEFAULT_BASE_URL) == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_base_plus.pt")


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ck.UnknownCheckpointError) as info:
        ck.get_checkpoint("sam3_huge")
    assert isinstance(info.value, ValueError)
    for c in ck.list_checkpoints():
        assert c.name in str(info.value)


def test_cache_dir_from_env(_cache: Path) -> None:
    assert ck.cache_dir() == _cache
    assert ck.checkpoint_path(NAME) == _cache / f"{NAME}.pt"


# -- download ---------------------------------------------------------------


def test_download_verifies_and_renames(server, ckpt_bytes: bytes, _cache: Path) -> None:
    path = ck.download(NAME, progress=False)
    assert path == _cache / f"{NAME}.pt"
    assert path.read_bytes() == ckpt_bytes
    assert not path.with_name(path.name + ".part").exists()
    assert "Range" not in server.seen[0]


def test_resume_sends_range_and_yields_identical_file(server, ckpt_bytes: bytes, _cache: Path) -> None:
    _cache.mkdir()
    half = len(ckpt_bytes) // 2
    (_cache / f"{NAME}.pt.part").write_bytes(ckpt_bytes[:half])
    reports: list[tuple[int, int | None]] = []
    path = ck.download(NAME, progress=lambda done, total: reports.append((done, total)))
    assert server.seen[-1]["Range"] == f"bytes={half}-"
    assert path.read_bytes() == ckpt_bytes
    assert reports[0] == (half, len(ckpt_bytes)) and reports[-1] == (len(ckpt_bytes), len(ckpt_bytes))


def test_server_ignoring_range_still_gives_correct_file(server, ckpt_bytes: bytes, _cache: Path) -> None:
    server.honour_range = False
    _cache.mkdir()
    (_cache / f"{NAME}.pt.part").write_bytes(ckpt_bytes[:1000])
    path = ck.download(NAME, progress=False)
    assert "Range" in server.seen[-1]
    assert path.read_bytes() == ckpt_bytes


def test_complete_part_file_is_finished_after_416(server, ckpt_bytes: bytes, _cache: Path) -> None:
    _cache.mkdir()
    (_cache / f"{NAME}.pt.part").write_bytes(ckpt_bytes)
    assert ck.download(NAME, progress=False).read_bytes() == ckpt_bytes


def test_interrupted_download_keeps_part_and_resumes(server, ckpt_bytes: bytes, _cache: Path) -> None:
    server.cut_at = 5000
    with pytest.raises(ck.CheckpointUnavailableError):
        ck.download(NAME, progress=False)
    part = _cache / f"{NAME}.pt.part"
    assert part.stat().st_size == 5000
    server.cut_at = None
    assert ck.download(NAME, progress=False).read_bytes() == ckpt_bytes
    assert server.seen[-1]["Range"] == "bytes=5000-"


def test_sha256_match_is_accepted(server, ckpt_bytes: bytes) -> None:
    entry = dataclasses.replace(ck.get_checkpoint(NAME), sha256=hashlib.sha256(ckpt_bytes).hexdigest())
    assert ck.download(entry, progress=False).read_bytes() == ckpt_bytes


def test_sha256_mismatch_is_rejected_and_leaves_nothing(server, _cache: Path) -> None:
    entry = dataclasses.replace(ck.get_checkpoint(NAME), sha256="0" * 64)
    with pytest.raises(ck.CheckpointVerificationError, match="sha256"):
        ck.download(entry, progress=False)
    assert list(_cache.iterdir()) == []


def test_non_torch_file_is_rejected(server, _cache: Path) -> None:
    server.files[URL_PATH] = b"<html>not a checkpoint</html>" * 100
    with pytest.raises(ck.CheckpointVerificationError):
        ck.download(NAME, progress=False)
    assert list(_cache.iterdir()) == []


def test_torch_file_without_model_dict_is_rejected(server, tmp_path: Path, _cache: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, other)
    server.files[URL_PATH] = other.read_bytes()
    with pytest.raises(ck.CheckpointVerificationError, match="'model'"):
        ck.download(NAME, progress=False)
    assert not (_cache / f"{NAME}.pt").exists()


def test_unreachable_host_names_url_and_destination(_cache: Path) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ck.CheckpointUnavailableError) as info:
        ck.download(NAME, progress=False, base_url=base, timeout=5)
    message = str(info.value)
    assert f"{base}{URL_PATH}" in message
    assert str(_cache / f"{NAME}.pt") in message


def test_http_404_is_unavailable(server) -> None:
    server.files.clear()
    with pytest.raises(ck.CheckpointUnavailableError, match="HTTP 404"):
        ck.download(NAME, progress=False)


# -- resolve ----------------------------------------------------------------


def test_resolve_registry_name(server) -> None:
    with pytest.raises(ck.CheckpointUnavailableError) as info:
        ck.resolve_checkpoint(NAME)
    assert str(ck.checkpoint_path(NAME)) in str(info.value)
    path = ck.download(NAME, progress=False)
    assert ck.resolve_checkpoint(NAME) == ("configs/sam2.1/sam2.1_hiera_t.yaml", path)


def test_resolve_plain_path(tmp_path: Path) -> None:
    pt = tmp_path / "mine.pt"
    pt.write_bytes(b"x")
    assert ck.resolve_checkpoint(pt) == (None, pt)
    with pytest.raises(ck.CheckpointUnavailableError):
        ck.resolve_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ck.UnknownCheckpointError):
        ck.resolve_checkpoint("sam2.1_hiera_huge")


# -- CLI --------------------------------------------------------------------


def _cli(*argv: str) -> int:
    return main(list(argv))


def test_cli_list_then_download(server, capsys, _cache: Path) -> None:
    assert _cli("weights", "list") == 0
    out = capsys.readouterr().out
    assert NAME in out and "configs/sam2.1/sam2.1_hiera_t.yaml" in out
    assert str(_cache) not in out  # nothing cached yet

    assert _cli("weights", "download", NAME, "--no-progress") == 0
    assert capsys.readouterr().out.strip() == str(_cache / f"{NAME}.pt")

    assert _cli("weights", "list") == 0
    assert str(_cache / f"{NAME}.pt") in capsys.readouterr().out


def test_cli_download_to_dest_with_progress(server, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "elsewhere"
    assert _cli("weights", "download", NAME, "--dest", str(dest)) == 0
    assert (dest / f"{NAME}.pt").is_file()


def test_cli_download_unreachable_exits_unavailable(capsys) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    # 3, not 2: "try again later" is not "fix the command" (cli/exit_codes.py)
    assert _cli("weights", "download", NAME, "--base-url", base, "--timeout", "5") == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert base in err and str(ck.checkpoint_path(NAME)) in err


def test_cli_download_corrupt_exits_1(server, capsys) -> None:
    server.files[URL_PATH] = b"junk" * 100
    assert _cli("weights", "download", NAME, "--no-progress") == 1
    assert "not a loadable" in capsys.readouterr().err


def test_cli_unknown_name_is_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        _cli("weights", "download", "sam3_huge")
    assert info.value.code == 2
    assert "sam2.1_hiera_tiny" in capsys.readouterr().err
