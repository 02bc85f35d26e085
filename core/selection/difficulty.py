"""Difficulty key of a session (spec 5.1): consistency c_s and difficulty df_s = -c_s.

c_s = (1/L_s) * sum_{j < L_s} sigmoid(u_s . e_{x_j}), the masked mean over the real items of the (right-padded)
input window, where u_s is the session vector of the recommender and e_v the **output** embedding of item v.
The model that produces u_s and e lives elsewhere; this module only does the arithmetic on arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

ArrayLike = Any  # numpy array or torch tensor


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """Return `x` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - defensive
        raise ValueError(f"{name}: cannot convert to an array ({exc})") from exc


def _check_inputs(u: np.ndarray, emb: np.ndarray, inputs: np.ndarray, lengths: np.ndarray) -> None:
    """Validate shapes and ranges of the `consistency` arguments; raise ValueError naming the argument."""
    if u.ndim != 2:
        raise ValueError(f"session_vectors must have shape (n, d), got {u.shape}")
    if emb.ndim != 2 or emb.shape[1] != u.shape[1]:
        raise ValueError(f"item_embeddings must have shape (n_items+1, {u.shape[1]}), got {emb.shape}")
    if inputs.ndim != 2 or inputs.shape[0] != u.shape[0]:
        raise ValueError(f"inputs must have shape ({u.shape[0]}, L), got {inputs.shape}")
    if not np.issubdtype(inputs.dtype, np.integer):
        raise ValueError(f"inputs must hold integer item ids, got dtype {inputs.dtype}")
    if lengths.shape != (u.shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be an integer array of shape ({u.shape[0]},), got {lengths.dtype} "
                         f"{lengths.shape}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > inputs.shape[1]):
        raise ValueError(f"lengths must lie in 1..{inputs.shape[1]} (the window width); got "
                         f"{lengths.min()}..{lengths.max()} (drop empty sessions first)")
    if inputs.size and (inputs.min() < 0 or inputs.max() >= emb.shape[0]):
        raise ValueError(f"inputs hold item ids outside 0..{emb.shape[0] - 1} (the rows of item_embeddings)")
    if not (np.isfinite(u).all() and np.isfinite(emb).all()):
        raise ValueError("session_vectors / item_embeddings contain NaN or inf")


def consistency(session_vectors: ArrayLike, item_embeddings: ArrayLike, inputs: ArrayLike, lengths: ArrayLike,
                *, chunk_size: int = 65536) -> np.ndarray:
    """Consistency c_s of each session with its own window (spec 5.1).

    session_vectors: (n, d) float, u_s. item_embeddings: (n_items+1, d) float, output embeddings e_v (row 0 is
    the padding row). inputs: (n, L) int, the window right-padded with 0. lengths: (n,) int in 1..L, the number
    of real items; the mask is `position < length`, so a real item with id 0 is still counted.
    Returns (n,) float64: mean over the L_s real window items of sigmoid(u_s . e_v). Computed in float64,
    `chunk_size` sessions at a time.
    """
    u = _to_numpy(session_vectors, "session_vectors").astype(np.float64, copy=False)
    emb = _to_numpy(item_embeddings, "item_embeddings").astype(np.float64, copy=False)
    x = _to_numpy(inputs, "inputs")
    ln = _to_numpy(lengths, "lengths")
    _check_inputs(u, emb, x, ln)
    out = np.empty(u.shape[0], dtype=np.float64)
    width = np.arange(x.shape[1])
    for start in range(0, u.shape[0], chunk_size):
        sl = slice(start, start + chunk_size)
        logits = np.einsum("nld,nd->nl", emb[x[sl]], u[sl])
        mask = width[None, :] < ln[sl, None]
        out[sl] = (expit(logits) * mask).sum(axis=1) / ln[sl]
    return out


def difficulty(session_vectors: ArrayLike, item_embeddings: ArrayLike, inputs: ArrayLike,
               lengths: ArrayLike) -> np.ndarray:
    """Difficulty df_s = -consistency (same arguments and shapes as `consistency`); returns (n,) float64."""
    return -consistency(session_vectors, item_embeddings, inputs, lengths)


def hardest_first_order(consistency_values: np.ndarray, session_ids: np.ndarray) -> np.ndarray:
    """Indices (n,) int64 that sort sessions ascending by consistency (hardest first), ties by session id.

    consistency_values: (n,) float; session_ids: (n,) int. Position s (1-based) of row `order[s-1]` is s.
    """
    cons, ids = np.asarray(consistency_values), np.asarray(session_ids)
    order = np.argsort(cons)
    ranked = cons[order]
    if (ranked[1:] == ranked[:-1]).any():  # ties: sort by (consistency, id) exactly
        order = np.lexsort((ids, cons))
    return order.astype(np.int64)
