"""File names as text: any name a POSIX file system holds, kept exactly and shown safely.

A POSIX file name is bytes; it need not be UTF-8 (archives copied from old
Windows or camera file systems hold Latin-1 names). Python decodes names with
`surrogateescape` (os.fsdecode): each byte that is not UTF-8 becomes a lone
surrogate U+DC80..U+DCFF, and os.fsencode gives the bytes back. mien keeps
that str everywhere inside (the crawl, the indexer, the store, whose source
keys are its bytes: a UTF-8 name's key is its UTF-8, as it always was).

A lone surrogate can't travel in a protobuf string, JSON for other languages
or a UTF-8 terminal, so where a name leaves mien it is written by `escape`:

- a name that is valid UTF-8 is itself, unchanged;
- in any other name each byte that is not UTF-8 is written \\xNN (two lowercase
  hex digits) and each backslash \\\\; so b"caf\\xe9.jpg" is shown as caf\\xe9.jpg.

Where a client gives a name back (a source filter, TagSource, IndexPaths, the web
app's media), `candidates` reads it: first as written, then, if it holds \\x
escapes, as the name they stand for. The one ambiguity: of a UTF-8 name spelled
exactly like the escape of another (a file literally named caf\\xe9.jpg beside
the Latin-1 café.jpg), the name as written wins; the other can't be named as text.

`shown` is for terminals and logs: `escape`, and control characters (a newline in
a name) written \\n, \\t, \\r or \\xNN / \\u00NN, so one name stays one line.
"""

from __future__ import annotations

import re

_ESCAPED_BYTE = re.compile(r"\\(\\|x([0-9a-fA-F]{2}))")
_CONTROL = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def is_plain(name: str) -> bool:
    """Whether `name` is valid Unicode (no escaped bytes): it travels as it is."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escape(name: str) -> str:
    """The name as valid Unicode (see the module docstring): itself when it is UTF-8."""
    if is_plain(name):
        return name
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append(f"\\u{ord(ch):04x}")   # not from a file name: never read back as one
        else:
            out.append(ch)
    return "".join(out)


def unescape(text: str) -> str | None:
    """The name `text` escapes (surrogateescape str), or None when it holds no \\x escape or
    a backslash that no escape explains (then it is only a name as written)."""
    if "\\x" not in text:
        return None
    raw = bytearray()
    at = 0
    for m in _ESCAPED_BYTE.finditer(text):
        if "\\" in text[at:m.start()]:
            return None
        raw += text[at:m.start()].encode("utf-8", "surrogateescape")
        raw += b"\\" if m[1] == "\\" else bytes([int(m[2], 16)])
        at = m.end()
    if "\\" in text[at:]:
        return None
    raw += text[at:].encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "surrogateescape")


def candidates(text: str) -> list[str]:
    """The names a client's `text` may stand for, the one as written first."""
    name = unescape(text)
    return [text] if name is None or name == text else [text, name]


def find(text: str, exists) -> str | None:
    """The first of `candidates(text)` for which exists(name) is true, else None."""
    for name in candidates(text):
        if exists(name):
            return name
    return None


def shown(name: str) -> str:
    """The name for a terminal or a log line: escaped, and no control character left raw."""
    name = escape(name)
    if name.isprintable():
        return name
    out = []
    for ch in name:
        if ch.isprintable():
            out.append(ch)
        elif ch in _CONTROL:
            out.append(_CONTROL[ch])
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")
    return "".join(out)
