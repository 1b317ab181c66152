"""Selection methods behind one contract; import registers them all.

From the seed paper (Perera-Lago et al. 2024): srs, clc, mms, des, dom, phl, nrmd, psa,
prd, fes. From the wider field: kcenter, herding, facility_location, kmeanspp, dedup,
typicality, el2n (loss scores from a short YOLO run); distribution learning: vq,
flow (Soricelli 2025), dream (Liu et al. 2023). Plus the uniform ``random`` baseline. Each registers itself in the method
catalog (:mod:`detreduce.methods`) as kind ``embedding``; ``detreduce methods`` lists them.
"""

from detreduce.reducers import (  # noqa: F401  (each import registers its reducer)
    clc,
    dedup,
    des,
    dom,
    dream,
    el2n,
    facility_location,
    fes,
    flow,
    herding,
    kcenter,
    kmeanspp,
    mms,
    nrmd,
    phl,
    prd,
    psa,
    random,
    srs,
    typicality,
    vq,
)
from detreduce.reducers.base import (
    Reducer,
    ReducerResult,
    get_reducer,
    list_reducers,
    register,
    resolve_budget,
)

__all__ = [
    "Reducer",
    "ReducerResult",
    "get_reducer",
    "list_reducers",
    "register",
    "resolve_budget",
]
