"""Numba-compiled kernels: arrays and scalars in, results written into ``out`` arrays.

Nothing here checks its input or allocates in a hot loop; the Python API converts and checks
once per call. Every function has a NumPy twin of the same name in ``fastbp.reference``.
"""
