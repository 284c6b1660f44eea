"""Mien.ListFolders: the folders a caller may give IndexPaths, one level at a time.

Only what lies under the server's allowed roots, by real path: a link inside a
root that leads out of every root is left out, like the indexer's crawl skips
it. Hidden folders (a leading dot) are left out too. Counting what a folder
holds stops at COUNT_LIMIT entries, and a reply lists at most LIST_LIMIT
folders, so one call stays cheap on any archive.
"""

from __future__ import annotations

import os

from mien.errors import BadInputError
from mien.indexer.crawl import under_roots
from mien.server.validate import clip
from mien.v1 import search_pb2

LIST_LIMIT = 1000
COUNT_LIMIT = 10000


def _counts(path: str) -> tuple[int, int]:
    """(folders, files) directly inside path, each counted up to COUNT_LIMIT; (0, 0) if unreadable."""
    folders = files = 0
    try:
        with os.scandir(path) as entries:
            for n, entry in enumerate(entries):
                if n >= 2 * COUNT_LIMIT:
                    break
                try:
                    if entry.is_dir():
                        folders += entry.name[0] != "."
                    elif entry.is_file():
                        files += 1
                except OSError:
                    continue
    except OSError:
        return 0, 0
    return min(folders, COUNT_LIMIT), min(files, COUNT_LIMIT)


def _folder(path: str) -> search_pb2.Folder:
    folders, files = _counts(path)
    return search_pb2.Folder(path=path, name=os.path.basename(path.rstrip(os.sep)) or path, folders=folders,
                             files=files)


def list_folders(ctx, path: str) -> search_pb2.ListFoldersResponse:
    roots = [str(r) for r in ctx.allowed_roots]
    if not roots:
        raise PermissionError("this server allows no server-side indexing (its operator starts it with "
                              "--allow-root DIR)")
    if not path:
        return search_pb2.ListFoldersResponse(folders=[_folder(r) for r in sorted(roots)])
    if not os.path.isabs(path):
        raise BadInputError(f"{clip(path)} is a relative path: give an absolute path on the server",
                            field="path", reason="PATH_NOT_ABSOLUTE")
    real = str(ctx.check_allowed(path))  # PermissionError outside the roots
    if not os.path.isdir(real):
        raise BadInputError(f"{clip(path)} is not a folder on the server", field="path", reason="NOT_A_FOLDER")
    folders, files, truncated = [], 0, False
    try:
        with os.scandir(real) as it:
            entries = sorted(it, key=lambda e: e.name)
    except PermissionError:
        raise PermissionError(f"the server may not read {clip(path)}") from None
    for entry in entries:
        try:
            if entry.is_file():
                files += 1
                continue
            if entry.name.startswith(".") or not entry.is_dir():
                continue
        except OSError:
            continue
        if not under_roots(os.path.realpath(entry.path), roots):
            continue  # a link that leads out: the indexer would skip it too
        if len(folders) == LIST_LIMIT:
            truncated = True
            continue
        folders.append(_folder(os.path.join(real, entry.name)))
    parent = os.path.dirname(real)
    return search_pb2.ListFoldersResponse(
        path=real, parent=parent if parent != real and under_roots(parent, roots) else "",
        folders=folders, files=files, truncated=truncated)
