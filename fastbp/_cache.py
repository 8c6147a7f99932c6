"""Where compiled kernels are kept: keyed on every compiled source, never stale.

Numba's own cache keys a function by the file it is defined in: edit a callee in another file
and the caller's cached machine code still runs the old callee. fastbp keys all its kernels
together on one hash of every source that is compiled in (``fastbp/kernels/*.py``,
``codes.py``, ``_jit.py``, this file), of numba's, llvmlite's and Python's versions, and looks
them up in a directory named after that hash. Any edit, upgrade or reinstall gives a new
directory, so a stale entry cannot be found.

Two directories are searched, in this order:

1. the user's cache, which receives everything compiled on this machine:
   ``$FASTBP_CACHE_DIR``, else ``$NUMBA_CACHE_DIR/fastbp``, else the platform's user cache
   folder (``~/.cache/fastbp`` on Linux), else a folder in the temporary directory; never the
   package directory, which may be read-only;
2. the kernels shipped inside an installed package (``fastbp/_prebuilt``), compiled when the
   wheel was built for the portable baseline ``x86-64-v3`` (AVX2, FMA), and loaded when this
   processor has that baseline's features. A CPU without them, another numba version or
   edited sources miss it, and the kernels are compiled for this machine instead: once,
   announced on stderr, then cached in 1.

Implemented on numba's ``FunctionCache`` (its internal API, stable since numba 0.50):
a locator for the directory and the stamp, and a second lookup for the shipped kernels.
"""

import hashlib
import os
import sys
import tempfile
import threading
from pathlib import Path

import llvmlite
import numba
from numba.core.caching import (
    CompileResultCacheImpl, FunctionCache, IndexDataCacheFile, _CacheLocator,
)

from . import _platform

PACKAGE = Path(__file__).resolve().parent
#: the files whose content is compiled into the kernels (Numba freezes module-level constants
#: of ``codes.py``; ``_jit.py`` holds the compile options)
COMPILED = ("codes.py", "_jit.py", "_cache.py", "kernels/*.py")
#: the shipped kernels, inside the package
PREBUILT = PACKAGE / "_prebuilt"
#: roughly how long compiling every kernel takes on a 2-core machine, for the announcement
COMPILE_SECONDS = 50


def _source_key():
    digest = hashlib.sha256()
    for pattern in COMPILED:
        for path in sorted(PACKAGE.glob(pattern)):
            digest.update(path.relative_to(PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    digest.update(f"numba {numba.__version__} llvmlite {llvmlite.__version__} "
                  f"python {sys.version_info[:2]} {getattr(sys, 'abiflags', '')}".encode())
    return digest.hexdigest()[:24]


#: the hash every cache entry is stamped with and filed under
KEY = _source_key()


def _writable(directory):
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        return False
    return True


def _user_base():
    if os.environ.get("FASTBP_CACHE_DIR"):
        return Path(os.environ["FASTBP_CACHE_DIR"])
    if numba.config.CACHE_DIR:
        return Path(numba.config.CACHE_DIR) / "fastbp"
    from numba.misc.appdirs import AppDirs
    return Path(AppDirs(appname="fastbp", appauthor=False).user_cache_dir)


def _choose_user_dir():
    for base in (_user_base(), Path(tempfile.gettempdir()) / f"fastbp-{os.getuid()}"
                 if hasattr(os, "getuid") else Path(tempfile.gettempdir()) / "fastbp"):
        directory = base / KEY
        if _writable(directory):
            return directory
    return None


_user_dir = None
_user_dir_lock = threading.Lock()


def user_dir():
    """The writable directory compiled kernels go to (None: none is writable, nothing is
    kept)."""
    global _user_dir
    with _user_dir_lock:
        if _user_dir is None:
            _user_dir = _choose_user_dir() or False
        return _user_dir or None


def shipped_dir():
    """The directory of kernels shipped with this installation (it may not exist)."""
    return PREBUILT / KEY


class _Locator(_CacheLocator):
    """Files of one function in the user's cache, stamped with ``KEY``."""

    def __init__(self, py_func, directory):
        self._lineno = py_func.__code__.co_firstlineno
        self._dir = directory

    def ensure_cache_path(self):
        if not _writable(Path(self._dir)):
            raise OSError(f"cannot write to {self._dir}")

    def get_cache_path(self):
        return str(self._dir)

    def get_source_stamp(self):
        return KEY

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        directory = user_dir()
        # nowhere to write: point at the shipped kernels; saving is then skipped
        return cls(py_func, directory if directory is not None else shipped_dir())


class _Impl(CompileResultCacheImpl):
    _locator_classes = [_Locator]


_announced = False


def _announce():
    global _announced
    if _announced or os.environ.get("FASTBP_QUIET_COMPILE"):
        return
    _announced = True
    where = user_dir()
    sys.stderr.write(
        f"fastbp: compiling the kernels for this machine (about {COMPILE_SECONDS} s on 2 cores, "
        f"once; kept in {where if where else 'memory only: no writable cache folder'}). "
        f"`python -m fastbp warmup` does it ahead of time.\n")
    sys.stderr.flush()


class KernelCache(FunctionCache):
    """Numba's per-function cache with fastbp's key and the shipped kernels as a second
    source (see the module docstring)."""

    _impl_class = _Impl

    def __init__(self, py_func):
        super().__init__(py_func)
        self._shipped = IndexDataCacheFile(cache_path=str(shipped_dir()),
                                           filename_base=self._impl.filename_base,
                                           source_stamp=KEY)

    def _load_overload(self, sig, target_context):
        if not self._enabled:
            return None
        codegen = target_context.codegen()
        key = self._index_key(sig, codegen)
        data = self._cache_file.load(key) if user_dir() is not None else None
        if data is None and shipped_dir().is_dir():
            data = self._shipped.load(key)  # shipped for this very CPU
            if data is None and _platform.runs_portable_code():
                portable = (key[1][0], _platform.PORTABLE_CPU, "")
                data = self._shipped.load((key[0], portable, key[2]))
        if data is None:
            _announce()
            return None
        return self._impl.rebuild(target_context, data)

    def _save_overload(self, sig, data):
        if user_dir() is None:
            return
        try:
            super()._save_overload(sig, data)
        except OSError:  # the cache folder went away or filled up: keep the code in memory
            pass


def attach(dispatcher):
    """Give a Numba dispatcher fastbp's cache (in place of ``cache=True``)."""
    dispatcher._cache = KernelCache(dispatcher.py_func)
    return dispatcher

