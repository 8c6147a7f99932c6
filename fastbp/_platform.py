"""Facts about the machine: processor family, usable cores, the portable code baseline.

A leaf module: it imports nothing from fastbp, and nothing here changes after import.
"""

import os
import platform

#: an x86 processor: MXCSR (denormal flushing) and the time-stamp counter exist
X86 = platform.machine().lower() in ("x86_64", "amd64", "x86", "i386", "i686")

#: the CPU that the kernels shipped inside a wheel are compiled for (``fastbp._cache``):
#: x86-64-v3 is AVX2 + FMA + BMI, every x86-64 server and desktop processor since about 2015
PORTABLE_CPU = "x86-64-v3"
#: LLVM feature names the host needs to run code compiled for ``PORTABLE_CPU``
PORTABLE_FEATURES = ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf", "avx",
                     "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")


def cores():
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def runs_portable_code():
    """Whether this CPU can run code compiled for ``PORTABLE_CPU``."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    import llvmlite.binding as ll
    features = ll.get_host_cpu_features()
    return all(features.get(name, False) for name in PORTABLE_FEATURES)
