"""`vos-service weights {list,download}`: see and fetch the official SAM 2 checkpoints.

Wiring, in cli.py::

    sub = parser.add_subparsers(dest="command", required=True)
    weights_cli.add_subparser(sub)
    args = parser.parse_args(argv)
    return args.func(args)
"""

from __future__ import annotations

import argparse
import sys

from vos_service.weights import checkpoints as ck
from vos_service.weights.shipped import DEFAULT_SHIPPED, shipped_model, shipped_names

# Exit codes: 2 also matches argparse's usage errors, because an unknown name
# or an unreachable server is something the operator fixes, not a crash.
EXIT_OK = 0
EXIT_BAD_FILE = 1
EXIT_UNAVAILABLE = 2


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "weights", help="list or download SAM 2 checkpoints",
        description="List or download the official SAM 2 / SAM 2.1 checkpoints.",
    )
    actions = p.add_subparsers(dest="weights_command", required=True, metavar="{list,download}")

    lst = actions.add_parser("list", help="show known checkpoints and whether each is cached")
    lst.add_argument("--dest", metavar="DIR", default=None,
                     help=f"directory to look in (default: ${ck.CACHE_ENV} or ~/.cache/vos_service/checkpoints)")

    dl = actions.add_parser("download", help="download (or resume) a checkpoint")
    dl.add_argument("name", choices=[c.name for c in ck.list_checkpoints()], metavar="NAME",
                    help="checkpoint name, see `weights list`")
    dl.add_argument("--dest", metavar="DIR", default=None, help="directory to write to (default: the cache)")
    dl.add_argument("--base-url", default=None,
                    help=f"mirror to download from (default: ${ck.BASE_URL_ENV} or {ck.DEFAULT_BASE_URL})")
    dl.add_argument("--timeout", type=float, default=ck.DEFAULT_TIMEOUT_S,
                    help="seconds to wait on any one socket operation")
    dl.add_argument("--force", action="store_true", help="download again even if the file exists")
    dl.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")

    p.set_defaults(func=run)
    return p


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
    return EXIT_OK


def _download(args: argparse.Namespace) -> int:
    try:
        path = ck.download(args.name, dest_dir=args.dest, progress=args.progress,
                           timeout=args.timeout, base_url=args.base_url, force=args.force)
    except (ck.CheckpointUnavailableError, ck.UnknownCheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ck.CheckpointVerificationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_FILE
    print(path)
    return EXIT_OK
