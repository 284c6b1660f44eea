"""`mien demo`: the main job end to end on the embedded default models.

Builds a small archive from photos that ship in installed packages plus
videos rendered from them, indexes it, names two people, starts a real gRPC
server on 127.0.0.1 and answers queries through it with the same CLI
commands a user types. Every step is a `mien ...` command, printed before it
runs, so the output doubles as a tutorial.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="index a demo archive built from package photos and answer queries over gRPC",
    )
    p.add_argument("--workdir", default="demo-out", help="where the archive, store and pictures go")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.set_defaults(func=run_demo)


def mien_command() -> str:
    """How to run mien in a fresh shell: the console script beside this Python ('.venv/bin/mien'
    when under the working folder), else this Python with -m mien. A bare `mien` is found only
    once the environment is activated."""
    script = Path(sys.executable).parent / "mien"
    if not (script.is_file() and os.access(script, os.X_OK)):
        return f"{shlex.quote(sys.executable)} -m mien"
    try:
        return shlex.quote(str(script.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(script))


def _run(argv: list[str]) -> None:
    from mien.cli import main

    print(f"\n$ {mien_command()} {shlex.join(argv)}", flush=True)
    code = main(argv)
    if code:
        raise SystemExit(f"mien demo: `mien {shlex.join(argv)}` exited with {code}")


def run_demo(args) -> int:
    from mien.demo.archive import build_demo_archive
    from mien.server.app import build_server

    work = Path(args.workdir).resolve()
    store = str(work / "store")
    print(f"Building the demo archive under {work / 'archive'} from package photos ...", flush=True)
    archive = build_demo_archive(work / "archive")
    photos = archive / "photos"
    obama, biden = str(photos / "obama.jpg"), str(photos / "biden.jpg")
    moods = str((archive / "videos" / "obama_moods.avi").resolve())

    _run(["index", str(archive), "--store", store])
    _run(["person", "add", "Obama", obama, "--store", store])
    _run(["person", "add", "Biden", biden, "--store", store])

    server, port = build_server(store, port=args.port)
    server.start()
    target = f"127.0.0.1:{port}"
    print(f"\nServing {store} on {target} (gRPC, {server.mien_front} front).", flush=True)
    try:
        _run(["stats", "--server", target])
        # other people making Obama's broad smile
        _run(["search", "--image", obama, "--exclude-own", "-k", "8", "--server", target,
              "--sheet", str(work / "search.png")])
        # "find Biden making Obama's faces", among Biden's faces only. Biden makes one, calm,
        # expression in this archive: Obama's calm obama3.jpg finds it within the tag distance
        # (0.5); his broad smile finds nothing that close, and says so instead of showing
        # neutral faces at distance 1.5.
        _run(["cross", "--image", str(photos / "obama3.jpg"), "--person", "Biden", "-k", "5",
              "--max-distance", "0.5", "--server", target, "--sheet", str(work / "cross.png")])
        _run(["cross", "--image", obama, "--person", "Biden", "-k", "5", "--max-distance", "0.5",
              "--server", target])
        _run(["tag", "create", "broad-smile", "--image", obama, "--replace", "--server", target])
        _run(["tag", "run", "--source", moods, "--server", target,
              "--timeline", str(work / "timeline.png")])
        _run(["summary", "--person", "Obama", "-k", "4", "--server", target,
              "--sheet", str(work / "summary.png")])
    finally:
        server.stop(grace=2).wait()
    print(f"\nPictures: {work / 'search.png'}, {work / 'cross.png'}, "
          f"{work / 'timeline.png'}, {work / 'summary.png'}")
    # the web app over the same store; --allow-root lets it show the archive's photos and videos
    command = f"{mien_command()} " + shlex.join(["serve", "--store", store, "--http", "8080", "--allow-root",
                                                 str(archive)])
    print(f"\nBrowse the demo store in the web app (then open http://127.0.0.1:8080/):\n  {command}"
          f"\n  (or `make serve` in the project folder)")
    return 0
