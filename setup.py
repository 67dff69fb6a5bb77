"""Builds media._rtpfast, the lean forwarder's per-viewer loop (metadata is in pyproject.toml).

The extension is optional: without a C compiler the install goes on and
media.rtpsend falls back to the pure-Python implementation (media.rtpslow).
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build extensions when possible; on failure warn and install without them."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler failure means "no speedups"
            print(f"warning: media._rtpfast not built ({exc})", file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"warning: {ext.name} not built ({exc}); using media.rtpslow", file=sys.stderr)


setup(
    ext_modules=[
        Extension(
            "media._rtpfast",
            sources=["media/_rtpfast.c"],
            extra_compile_args=[
                "-O2",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                "-Wno-missing-field-initializers",
            ],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
