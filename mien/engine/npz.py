"""Deterministic .npz files: the same arrays give the same bytes (numpy's savez stamps the time)."""

from __future__ import annotations

import io
import zipfile

import numpy as np


def npz_bytes(arrays: dict, compress: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        for key in sorted(arrays):
            part = io.BytesIO()
            np.lib.format.write_array(part, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, part.getvalue())
    return buf.getvalue()
