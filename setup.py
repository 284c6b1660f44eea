"""Build mien's optional C++ extensions (mien.native).

Everything else is in pyproject.toml.
- _grpcpp links gRPC C++ through pkg-config (Debian: libgrpc++-dev); where that is
  missing the package still installs and mien runs on grpcio alone (Python server and client).
- _rank, the store's exact search finish, needs only pybind11; where it fails to build
  the store runs the same finish in Python.
"""

import subprocess
import sys

from setuptools import Extension, setup


def _pkg_config(*args: str) -> list[str] | None:
    try:
        return subprocess.check_output(["pkg-config", *args, "grpc++"], text=True).split()
    except (OSError, subprocess.CalledProcessError):
        return None


def _grpcpp_extension() -> list[Extension]:
    cflags, libs = _pkg_config("--cflags"), _pkg_config("--libs")
    if cflags is None or libs is None:
        print("mien: gRPC C++ (pkg-config grpc++) not found; building without mien.native._grpcpp",
              file=sys.stderr)
        return []
    import pybind11

    return [Extension(
        "mien.native._grpcpp",
        sources=["mien/native/module.cc", "mien/native/front.cc", "mien/native/channel.cc"],
        depends=["mien/native/common.h"],
        include_dirs=[pybind11.get_include()],
        extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden", *cflags],
        extra_link_args=libs,
        language="c++",
        optional=True,  # a failed build leaves the Python server, never a failed install
    )]


def _rank_extension() -> list[Extension]:
    import pybind11

    return [Extension(
        "mien.native._rank",
        sources=["mien/native/rank.cc"],
        depends=["mien/native/rank.h"],
        include_dirs=[pybind11.get_include()],
        extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden"],
        language="c++",
        optional=True,  # a failed build leaves the Python finish, never a failed install
    )]


setup(ext_modules=_rank_extension() + _grpcpp_extension())
