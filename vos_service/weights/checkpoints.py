"""Registry of the official SAM 2 / SAM 2.1 checkpoints, and a resumable downloader.

A checkpoint is known by name (``sam2.1_hiera_tiny`` ...). The registry maps it to
the hydra config shipped inside the ``sam2`` package and to its download URL.
Downloads land in a ``.part`` file next to the destination, resume with an HTTP
Range request, are verified, and only then are renamed into place, so a file at
the final path is always a complete, loadable checkpoint.

Imports no torch at module level: ``vos-service weights list`` should not pay
for a torch import. torch is imported only to verify a downloaded file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vos_service.engine.errors import EngineError

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
BASE_URL_ENV = "VOS_SERVICE_CHECKPOINT_BASE_URL"
CACHE_ENV = "VOS_SERVICE_CACHE"
DEFAULT_TIMEOUT_S = 30.0  # per socket operation (connect, each read), not the whole transfer
_CHUNK_BYTES = 1 << 20

# (bytes_done, bytes_total or None when the server did not say)
ProgressFn = Callable[[int, int | None], None]


class CheckpointError(EngineError):
    """Base of every checkpoint error, so callers can catch the family at once."""


class UnknownCheckpointError(CheckpointError, ValueError):
    """The name is not in the registry, nor (for resolve) a file (maps to INVALID_ARGUMENT)."""


class CheckpointUnavailableError(CheckpointError, RuntimeError):
    """Not on disk and could not be fetched: network down, HTTP error (maps to UNAVAILABLE)."""


class CheckpointVerificationError(CheckpointError, RuntimeError):
    """The bytes are not the expected checkpoint: checksum or structure (maps to FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class Checkpoint:
    """One official checkpoint.

    ``approx_size_bytes`` and ``approx_params`` are rounded figures from the
    SAM 2 release notes: they size the progress bar and the ``weights list``
    table, and are never used to accept or reject a file.
    """

    name: str  # also the file stem: <name>.pt
    config: str  # hydra config name inside the sam2 package, as build_sam2() takes it
    release: str  # path segment under the base URL (the release date folder)
    approx_size_bytes: int
    approx_params: int
    # Verified exactly when known. Left None rather than guessed: a wrong
    # checksum would reject every good download.
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}.pt"

    def url(self, base_url: str | None = None) -> str:
        base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return f"{base.rstrip('/')}/{self.release}/{self.filename}"


_MB = 1_000_000
_REGISTRY: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint("sam2.1_hiera_tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", "092824", 156 * _MB, 38_900_000),
        Checkpoint("sam2.1_hiera_small", "configs/sam2.1/sam2.1_hiera_s.yaml", "092824", 184 * _MB, 46_000_000),
        Checkpoint("sam2.1_hiera_base_plus", "configs/sam2.1/sam2.1_hiera_b+.yaml", "092824", 324 * _MB, 80_800_000),
        Checkpoint("sam2.1_hiera_large", "configs/sam2.1/sam2.1_hiera_l.yaml", "092824", 898 * _MB, 224_400_000),
        Checkpoint("sam2_hiera_tiny", "configs/sam2/sam2_hiera_t.yaml", "072824", 156 * _MB, 38_900_000),
        Checkpoint("sam2_hiera_small", "configs/sam2/sam2_hiera_s.yaml", "072824", 184 * _MB, 46_000_000),
        Checkpoint("sam2_hiera_base_plus", "configs/sam2/sam2_hiera_b+.yaml", "072824", 324 * _MB, 80_800_000),
        Checkpoint("sam2_hiera_large", "configs/sam2/sam2_hiera_l.yaml", "072824", 898 * _MB, 224_400_000),
    )
}


def list_checkpoints() -> list[Checkpoint]:
    return list(_REGISTRY.values())


def get_checkpoint(name: str) -> Checkpoint:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCheckpointError(
            f"unknown checkpoint {name!r}; known: {', '.join(_REGISTRY)}"
        ) from None


def cache_dir() -> Path:
    """Where named checkpoints live: $VOS_SERVICE_CACHE, else ~/.cache/vos_service/checkpoints."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vos_service" / "checkpoints"


def checkpoint_path(name: str, dest_dir: str | os.PathLike | None = None) -> Path:
    """Final on-disk path of a named checkpoint (whether or not it exists yet)."""
    directory = Path(dest_dir) if dest_dir is not None else cache_dir()
    return directory / get_checkpoint(name).filename


def resolve_checkpoint(
    name_or_path: str | os.PathLike, dest_dir: str | os.PathLike | None = None
) -> tuple[str | None, Path]:
    """Map a registry name or a .pt path to (sam2 config name or None, existing file).

    A plain path carries no config: the caller must supply one. Never downloads;
    serving must not block on the network, so fetching is an explicit step.
    """
    text = os.fspath(name_or_path)
    if text in _REGISTRY:
        ckpt = _REGISTRY[text]
        path = checkpoint_path(text, dest_dir)
        if not path.is_file():
            raise CheckpointUnavailableError(
                f"checkpoint {text!r} is not downloaded. Run `vos-service weights download {text}`, "
                f"or fetch {ckpt.url()} yourself and place it at {path}"
            )
        return ckpt.config, path
    path = Path(text).expanduser()
    if path.is_file():
        return None, path
    if path.suffix == ".pt" or os.sep in text:
        raise CheckpointUnavailableError(f"checkpoint file not found: {path}")
    raise UnknownCheckpointError(
        f"{text!r} is neither a known checkpoint nor an existing file; known: {', '.join(_REGISTRY)}"
    )


def verify_checkpoint_file(path: str | os.PathLike, sha256: str | None = None) -> None:
    """Raise CheckpointVerificationError unless ``path`` is a sam2-style checkpoint.

    The sha256 is checked when given; the structure (a dict holding a "model"
    state dict) always, because most registry entries have no known checksum.
    """
    path = Path(path)
    if sha256 is not None:
        actual = _sha256_of(path)
        if actual != sha256.lower():
            raise CheckpointVerificationError(
                f"sha256 mismatch for {path}: expected {sha256}, got {actual}"
            )
    import torch  # lazy: see module docstring

    try:
        # weights_only: never run pickled code from a downloaded file.
        # mmap: a 900 MB checkpoint is checked without reading it all into RAM.
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises several unrelated types for bad files
        raise CheckpointVerificationError(f"{path} is not a loadable torch checkpoint: {exc}") from exc
    if not isinstance(obj, Mapping) or not isinstance(obj.get("model"), Mapping):
        raise CheckpointVerificationError(f"{path} has no 'model' state dict; not a SAM 2 checkpoint")


def download(
    checkpoint: str | Checkpoint,
    dest_dir: str | os.PathLike | None = None,
    progress: bool | ProgressFn = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    base_url: str | None = None,
    force: bool = False,
) -> Path:
    """Fetch a checkpoint into ``dest_dir`` (default: cache_dir()) and return its path.

    ``checkpoint`` may be a Checkpoint, e.g. a registry entry with a checksum
    filled in via dataclasses.replace. ``progress`` is True for a tqdm bar on
    stderr, False for silence, or a callable. An existing final file is
    returned as is unless ``force``. A network failure keeps the ``.part``
    file, so calling again resumes; a verification failure deletes it.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else get_checkpoint(checkpoint)
    directory = Path(dest_dir) if dest_dir is not None else cache_dir()
    final = directory / ckpt.filename
    if final.is_file() and not force:
        return final
    directory.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    url = ckpt.url(base_url)

    report, close = _make_progress(progress, ckpt)
    try:
        _fetch(url, part, timeout, report, ckpt.approx_size_bytes)
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, _Truncated) as exc:
        reason = f"HTTP {exc.code}" if isinstance(exc, urllib.error.HTTPError) else str(exc) or type(exc).__name__
        raise CheckpointUnavailableError(
            f"could not download checkpoint {ckpt.name!r} from {url} ({reason}). "
            f"Re-run to resume, or download it manually and place it at {final}"
        ) from exc
    finally:
        close()

    try:
        verify_checkpoint_file(part, ckpt.sha256)
    except CheckpointVerificationError:
        part.unlink(missing_ok=True)  # bad bytes must not be resumed from next time
        raise
    os.replace(part, final)  # same directory, so atomic: readers see all or nothing
    return final


class _Truncated(Exception):
    """The server closed the body before the advertised length (http.client doesn't raise)."""


def _fetch(url: str, part: Path, timeout: float, report: ProgressFn, approx_total: int) -> None:
    # At most two rounds: a resume attempt, then (if the server's answer does
    # not line up with our .part) one clean download from byte 0.
    for _ in range(2):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "vos-service"})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not have:
                raise
            # 416: nothing at or past our offset. Either the .part is already
            # whole (an earlier run died before renaming) or it is junk.
            _, total = _parse_content_range(err.headers.get("Content-Range"))
            err.close()
            if total == have:
                return
            part.unlink()
            continue
        with response:
            if response.status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if start != have:
                    part.unlink()
                    continue
                mode = "ab"
            else:
                # 200: the server ignored Range and sent the whole file; appending
                # would duplicate the prefix, so start over.
                have, mode = 0, "wb"
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            _stream(response, part, mode, have, total, report, approx_total)
        return
    raise _Truncated("server answers do not match the partial download")


def _stream(response, part: Path, mode: str, done: int, total: int | None,
            report: ProgressFn, approx_total: int) -> None:
    report(done, total or approx_total)
    with open(part, mode) as out:
        while chunk := response.read(_CHUNK_BYTES):
            out.write(chunk)
            done += len(chunk)
            report(done, total or approx_total)
    if total is not None and done != total:
        raise _Truncated(f"connection closed at {done} of {total} bytes")


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/200' -> (100, 200); 'bytes */200' -> (None, 200)."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (None if start == "*" else int(start)), (None if total == "*" else int(total))


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _make_progress(progress: bool | ProgressFn, ckpt: Checkpoint) -> tuple[ProgressFn, Callable[[], None]]:
    """Return (report, close). The tqdm bar is created on the first report,
    when the resume offset and the server's total are known."""
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return (lambda done, total: None), lambda: None
    from tqdm import tqdm

    bars: list[tqdm] = []

    def report(done: int, total: int | None) -> None:
        if not bars:
            bars.append(tqdm(total=total, initial=done, unit="B", unit_scale=True,
                             unit_divisor=1024, desc=ckpt.name))
        bars[0].update(done - bars[0].n)

    def close() -> None:
        if bars:
            bars[0].close()

    return report, close
