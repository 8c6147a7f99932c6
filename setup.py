"""Build hook: a wheel of fastbp carries its kernels compiled (``fastbp/_prebuild.py``).

Everything else about the package is in ``pyproject.toml``. After the sources are copied
into the build directory, the kernels are compiled into ``fastbp/_prebuilt`` there, so that
``pip install .`` (or a wheel from ``pip wheel .`` / ``python -m build``) starts without a
compiler wait. A failure here leaves a wheel without kernels (they are then compiled at the
first fit), never a failed build; ``FASTBP_PREBUILD=0`` skips it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution


class build_py_with_kernels(build_py):  # noqa: N801  (setuptools' command naming)
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install compiles into the user's cache as the sources do
        build_lib = Path(self.build_lib).resolve()
        target = build_lib / "fastbp" / "_prebuilt"
        shutil.rmtree(target, ignore_errors=True)  # a previous build's kernels
        # the build's copy first; pip's isolated build environment is on PYTHONPATH too
        path = [str(build_lib)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                   if p]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        try:
            subprocess.run([sys.executable, "-m", "fastbp._prebuild", str(target)], env=env,
                           cwd=build_lib, check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            print(f"fastbp: building without compiled kernels ({error}); they will be compiled "
                  f"at the first fit", file=sys.stderr)


class KernelsDistribution(Distribution):
    """A wheel tagged for this Python and platform: its kernels are compiled code for them."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": build_py_with_kernels}, distclass=KernelsDistribution)
