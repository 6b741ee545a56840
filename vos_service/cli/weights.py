"""`vos-service weights {list,download}`: see and fetch the official SAM 2 checkpoints.

Imports no torch: listing is instant, and torch is loaded only to verify a download.
Errors (not downloadable, a corrupt file) map to exit codes in exit_codes.py.
"""

from __future__ import annotations

import argparse

from ..weights import checkpoints as ck
from ..weights.shipped import DEFAULT_SHIPPED, shipped_model, shipped_names
from .options import add_parser


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "List or download the official SAM 2 / SAM 2.1 checkpoints."
    actions = p.add_subparsers(dest="weights_command", required=True, metavar="{list,download}")

    lst = add_parser(actions, "list", help="show known checkpoints and whether each is cached")
    lst.add_argument("--dest", metavar="DIR", default=None,
                     help=f"directory to look in (default: ${ck.CACHE_ENV} or ~/.cache/vos_service/checkpoints)")

    dl = add_parser(actions, "download", help="download (or resume) a checkpoint")
    dl.add_argument("name", choices=[c.name for c in ck.list_checkpoints()], metavar="NAME",
                    help="checkpoint name, see `weights list`")
    dl.add_argument("--dest", metavar="DIR", default=None, help="directory to write to (default: the cache)")
    dl.add_argument("--base-url", default=None,
                    help=f"mirror to download from (default: ${ck.BASE_URL_ENV} or {ck.DEFAULT_BASE_URL})")
    dl.add_argument("--timeout", type=float, default=ck.DEFAULT_TIMEOUT_S,
                    help="seconds to wait on any one socket operation (default %(default)s)")
    dl.add_argument("--force", action="store_true", help="download again even if the file exists")
    dl.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")

    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.weights_command == "list":
        return _list(args)
    return _download(args)


def _list(args: argparse.Namespace) -> int:
    rows = [("NAME", "CONFIG", "PARAMS", "SIZE", "CACHED")]
    for c in ck.list_checkpoints():
        path = ck.checkpoint_path(c.name, args.dest)
        rows.append((
            c.name,
            c.config,
            f"~{c.approx_params / 1e6:.1f}M",
            f"~{c.approx_size_bytes / 1e6:.0f} MB",
            str(path) if path.is_file() else "-",
        ))
    for name in shipped_names():  # trained by this project, inside the package: always present
        m = shipped_model(name, verify=False)
        rows.append((name + " (shipped, default)" if name == DEFAULT_SHIPPED else name + " (shipped)", m.config,
                     f"{m.card['params'] / 1e6:.1f}M", f"{m.card['size_bytes'] / 1e6:.1f} MB", str(m.weights)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return 0


def _download(args: argparse.Namespace) -> int:
    path = ck.download(args.name, dest_dir=args.dest, progress=args.progress,
                       timeout=args.timeout, base_url=args.base_url, force=args.force)
    print(path)
    return 0
