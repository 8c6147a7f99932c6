"""One training epoch, compiled engine against the NumPy reference, in the same run.

Run: python -m pytest bench/bench_epoch.py --benchmark-group-by=param:workload
(one workload: add ``-k small``).
pytest-benchmark prints each group's times side by side with the ratio to the fastest.
Every benchmark trains one warm-up epoch first, so compilation is never timed.
"""

import pytest

from workloads import WORKLOADS, data, fastbp_model


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_epoch(benchmark, workload, backend):
    X, y = data(workload)
    batch = WORKLOADS[workload][4]
    model = fastbp_model(workload, backend)
    model.fit(X, y, epochs=1, batch_size=batch, verbose=0)  # warm-up: compiles or loads the cache
    benchmark.group = f"epoch {workload}"
    benchmark.extra_info["samples_per_epoch"] = len(X)
    benchmark.pedantic(model.fit, args=(X, y), kwargs={"epochs": 1, "batch_size": batch},
                       rounds=5 if backend == "numba" else 3, iterations=1)
