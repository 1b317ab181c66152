"""Flow: select by a learned density (Soricelli 2025, "Improving computational efficiency via
tiny machine learning data-centric methods", thesis: normalizing-flow density models steer
training towards data-efficient samples).

A normalizing flow from ``zuko`` — ``architecture`` ``maf``, a masked autoregressive flow
(Papamakarios et al. 2017, affine autoregressive transforms), or ``nsf``, a
rational-quadratic neural spline flow (Durkan et al. 2019): more flexible, about 14× the
seconds per row on a CPU (measured: 74.5 vs 5.3 µs per row and step at batch 2048,
``benchmarks/bench_flow_arch.py``) — is fitted by maximum likelihood on the embeddings reduced by PCA to
``n_components`` whitened dimensions: Adam, mini-batches of ``batch_size``, at most
``epochs`` epochs, early stopping when the held-out negative log-likelihood (a seeded
``val_fraction`` of the rows) has not improved for ``patience`` epochs, best weights
kept. At most ``max_fit_rows`` rows (a seeded sample) are fitted; every row is scored.
Why ``zuko``: maintained (1.6, 2026), small, pure PyTorch (runs where torch runs, GPU
included), with the standard flows (NSF, MAF) behind one ``Flow`` interface;
``normflows`` and ``nflows`` have had no release since 2023 and 2020. Why PCA first: a
flow on 1280 dimensions needs far more rows than a detection set has; 16 whitened
components hold the directions that separate images.

Rule: rows are kept by sampling without replacement with probability ``∝ p(x)**-τ``
(``τ`` = ``temperature``; Gumbel-top-k on ``-τ·log p(x)``, seeded), so the kept set has
density ``∝ p(x)**(1-τ)``: ``τ`` 0 is uniform random, 1 flattens the density to the data's
support, the default 0.5 thins the densest (most redundant) regions most while dense
regions still keep images and low-density ones are covered. Log-densities below the
``floor_quantile`` quantile are raised to it, so a few extreme outliers (broken images,
odd crops) weigh no more than the sparse tail they sit in. One flow is fitted on all
rows (the density is the dataset's); under balance every stratum keeps its quota
(joint method). The fit runs on ``device`` (``auto``: the first GPU when there is one);
its energy is inside the selection phase that callers meter. Deterministic for a seed
on the CPU (torch's global RNG is forked, seeded and restored around the fit).
Cost: PCA O(n·d·c), fit O(epochs·min(n, max_fit_rows)·flow), scoring O(n·flow).

Scores: each row's log-density under the flow (higher = denser, more redundant).
"""

from __future__ import annotations

import logging

import numpy as np

from detreduce.config import default
from detreduce.reducers._params import check_choice, check_float, check_int
from detreduce.reducers._strata import JointReducer, interleave
from detreduce.reducers.base import ReducerResult, register

_D = default("reducers.flow")
log = logging.getLogger("detreduce")


def whitened_pca(X: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """``X`` projected on its top principal components, each scaled to unit variance."""
    from sklearn.decomposition import PCA

    c = max(1, min(n_components, X.shape[1], len(X) - 1))
    Z = PCA(c, whiten=True, svd_solver="auto", random_state=seed).fit_transform(X)
    return np.ascontiguousarray(np.nan_to_num(Z), dtype=np.float32)


def fit_log_density(
    Z: np.ndarray,
    *,
    seed: int,
    transforms: int,
    hidden: int,
    architecture: str,
    epochs: int,
    patience: int,
    batch_size: int,
    lr: float,
    val_fraction: float,
    max_fit_rows: int,
    device: str = "auto",
) -> tuple[np.ndarray, dict]:
    """Fit a flow (``maf`` or ``nsf``) on ``Z`` (rows × c) and return ``(log p of every row, fit report)``.

    The report says the epochs run, the best held-out NLL and the rows fitted.
    """
    import torch
    import zuko

    from detreduce.device import parse_device

    dev = torch.device(parse_device(device).torch)
    rng = np.random.default_rng(seed)
    n, c = Z.shape
    fit_rows = np.sort(rng.choice(n, min(n, max_fit_rows), replace=False))
    n_val = int(round(val_fraction * len(fit_rows))) if len(fit_rows) >= 20 else 0
    perm = rng.permutation(fit_rows)
    val, train = perm[:n_val], perm[n_val:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31)))
        build = {"maf": zuko.flows.MAF, "nsf": zuko.flows.NSF}[architecture]
        flow = build(c, transforms=transforms, hidden_features=(hidden, hidden)).to(dev)
        opt = torch.optim.Adam(flow.parameters(), lr=lr)
        Zt = torch.from_numpy(Z).to(dev)
        Xtr, Xval = Zt[torch.from_numpy(train)], Zt[torch.from_numpy(val)]
        best, best_state, stale, ran = float("inf"), None, 0, 0
        for _ in range(epochs):
            ran += 1
            flow.train()
            for b in torch.randperm(len(Xtr)).split(batch_size):
                loss = -flow().log_prob(Xtr[b]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            if not n_val:
                continue
            flow.eval()
            with torch.no_grad():
                nll = float(-flow().log_prob(Xval).mean())
            if nll < best - 1e-4:
                best, stale = nll, 0
                best_state = {k: v.detach().clone() for k, v in flow.state_dict().items()}
            else:
                stale += 1
                if stale >= patience:
                    break
        if best_state is not None:
            flow.load_state_dict(best_state)
        flow.eval()
        with torch.no_grad():
            logp = torch.cat([flow().log_prob(z) for z in Zt.split(8192)]).cpu().numpy()
    report = {"epochs": ran, "val_nll": best if n_val else None, "rows_fitted": len(fit_rows)}
    return logp.astype(np.float64), report


@register("normalizing_flow", "density")
class FlowReducer(JointReducer):
    """Keep rows with probability ∝ p(x)^-τ under a normalizing flow on PCA embeddings."""

    name = "flow"
    summary = "normalizing-flow density: thin the densest regions, keep the sparse ones covered"
    reference = "Soricelli 2025 (thesis, flow-based pruning); MAF, Papamakarios et al. 2017"

    def __init__(
        self,
        n_components: int = _D["n_components"],
        architecture: str = _D["architecture"],
        transforms: int = _D["transforms"],
        hidden: int = _D["hidden"],
        epochs: int = _D["epochs"],
        patience: int = _D["patience"],
        batch_size: int = _D["batch_size"],
        lr: float = _D["lr"],
        val_fraction: float = _D["val_fraction"],
        max_fit_rows: int = _D["max_fit_rows"],
        temperature: float = _D["temperature"],
        floor_quantile: float = _D["floor_quantile"],
        device: str = _D["device"],
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.transforms = transforms
        self.hidden = hidden
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.lr = lr
        self.val_fraction = val_fraction
        self.max_fit_rows = max_fit_rows
        self.temperature = temperature
        self.floor_quantile = floor_quantile
        self.device = device

    def _check(self) -> None:
        from detreduce.device import parse_device

        for key in ("n_components", "transforms", "hidden", "epochs", "patience", "batch_size"):
            check_int(self.name, key, getattr(self, key), low=1)
        check_choice(self.name, "architecture", self.architecture, ("maf", "nsf"))
        check_int(self.name, "max_fit_rows", self.max_fit_rows, low=2)
        check_float(self.name, "lr", self.lr, low=0, low_open=True)
        check_float(self.name, "val_fraction", self.val_fraction, low=0, high=1, high_open=True)
        check_float(self.name, "temperature", self.temperature, low=0)
        check_float(self.name, "floor_quantile", self.floor_quantile, low=0, high=1)
        parse_device(self.device)  # a device this machine has, or one clear error

    def _select_joint(self, X, groups, rows, quotas, rng):
        seed = int(rng.integers(2**31))
        if len(X) < 3 or not np.ptp(X, axis=0).any():  # nothing to fit: uniform random
            logp = np.zeros(len(X))
        else:
            logp, report = fit_log_density(
                whitened_pca(X, int(self.n_components), seed),
                seed=seed,
                architecture=self.architecture,
                transforms=int(self.transforms),
                hidden=int(self.hidden),
                epochs=int(self.epochs),
                patience=int(self.patience),
                batch_size=int(self.batch_size),
                lr=float(self.lr),
                val_fraction=float(self.val_fraction),
                max_fit_rows=int(self.max_fit_rows),
                device=self.device,
            )
            log.info("flow fit: %s", report)
        floor = np.quantile(logp, float(self.floor_quantile))
        key = -float(self.temperature) * np.maximum(logp, floor) + rng.gumbel(size=len(X))
        orders = [
            r[np.argsort(-key[r], kind="stable")[:q]]
            for r, q in zip(rows, quotas, strict=True)
            if q
        ]
        return ReducerResult(indices=interleave(orders), scores=logp)
