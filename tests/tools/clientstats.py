# SPDX-License-Identifier: MIT
"""What the Python test clients (urllib3_pool.py, grpc_client.py) share with
the C test tools: one percentile definition (nearest rank, as tests/lib/pctl.h:
the value at index ceil(q n) - 1 of the sorted values)."""
import math


def pct(sorted_vals, q):
    """Nearest-rank quantile q (0..1) of an ascending list; 0 when empty."""
    if not sorted_vals:
        return 0
    i = min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[i]
