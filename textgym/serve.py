"""``textgym serve <env-id>``: one env served over OpenEnv (HTTP + WebSocket sessions, optionally a web page),
or, with ``--export DIR``, an OpenEnv environment package of it written to ``DIR``."""

from __future__ import annotations

import argparse
import json
import sys

USAGE = (
    "textgym serve <env-id> [--kwargs JSON] [--host 127.0.0.1] [--port 8000] [--max-sessions 64] "
    "[--idle-timeout 900] [--web] [--export DIR]"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of ``textgym serve`` (argparse exits with 2 and a one-line error on bad input)."""
    parser = argparse.ArgumentParser(prog="textgym serve", usage=USAGE, description=__doc__)
    parser.add_argument("env_id", help="a registered env id, or module:namespace/Name-v0 for a user's own")
    parser.add_argument(
        "--kwargs",
        default="{}",
        metavar="JSON",
        help="gym.make keyword arguments as a JSON object, e.g. '{\"is_slippery\": false}'",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (0.0.0.0 exposes it to the network)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-sessions", type=int, default=64, help="concurrent WebSocket sessions at most")
    parser.add_argument(
        "--idle-timeout", type=float, default=900.0, help="close sessions idle this many seconds (0: never)"
    )
    parser.add_argument("--web", action="store_true", help="serve OpenEnv's web page to play the env at /web")
    parser.add_argument(
        "--export", metavar="DIR", help="write an OpenEnv env package to DIR instead of serving"
    )
    args = parser.parse_args(argv)
    if args.max_sessions < 1:
        parser.error(f"--max-sessions must be >= 1, got {args.max_sessions}")
    if args.idle_timeout < 0:
        parser.error(f"--idle-timeout must be >= 0, got {args.idle_timeout}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, got {args.port}")
    try:
        args.kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as error:
        parser.error(f"--kwargs is not JSON: {error}")
    if not isinstance(args.kwargs, dict):
        parser.error(f"--kwargs must be a JSON object of gym.make arguments, got {args.kwargs!r}")
    return args


def main(argv: list[str]) -> int:
    """Serve until interrupted, or export; the exit status (1 with a one-line error when it cannot start)."""
    args = parse_args(argv)
    try:
        import uvicorn

        import textgym  # noqa: F401 - registers the envs
        from textgym.integrations.openenv_export import export_package
        from textgym.integrations.openenv_server import make_app
    except ImportError as error:
        print(f"textgym serve: {error}", file=sys.stderr)  # noqa: T201 - the CLI's error line
        return 1
    try:
        if args.export:
            root = export_package(args.env_id, args.export, **args.kwargs)
            print(f"wrote the OpenEnv package of {args.env_id} to {root}: `openenv validate {root}`")  # noqa: T201
            return 0
        app = make_app(
            args.env_id,
            max_sessions=args.max_sessions,
            idle_timeout_s=args.idle_timeout or None,
            web=args.web,
            **args.kwargs,
        )
    except (ValueError, TypeError) as error:
        print(f"textgym serve: {error}", file=sys.stderr)  # noqa: T201
        return 1
    address = f"{args.host}:{args.port}"
    pages = f", web page at http://{address}/web" if args.web else ""
    print(f"serving {args.env_id} at http://{address} (sessions: ws://{address}/ws{pages})", flush=True)  # noqa: T201
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
