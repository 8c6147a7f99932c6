"""Plain NumPy implementation of every compiled kernel: the oracle the kernels are tested
against, a backend a model can train on (``compile(..., backend="numpy")``), and the place
to read backpropagation written out step by step.

Each module mirrors its twin in ``fastbp.kernels``: same function names, same arguments,
same buffers. Every function works in float32 or float64.
"""
