"""Turning interaction logs into sessions, and splitting sessions.

Shared by every raw source (ml-100k, hetrec2011, Amazon, csv) so all of them sessionize the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400


def sessionize(log: pd.DataFrame, *, by: str = "day", gap_seconds: int = 1800, min_length: int = 5,
               max_length: int | None = 50, dedupe: bool = False) -> pd.DataFrame:
    """Group a log into sessions.

    log: columns user_id, item_id (raw, any type), timestamp (Unix seconds, int or float).
    by: 'day' (one user's interactions in one UTC day) or 'gap' (a new session after `gap_seconds` of inactivity).
    Items are ordered by (timestamp, item_id) so ties break the same way everywhere. `dedupe` keeps the first
    occurrence of a repeated item within a session; sessions shorter than `min_length` (after dedupe) are dropped;
    `max_length` keeps the last items. Returns columns session_key (str), user_id, start (timestamp of the first
    item), items (list of raw ids, input + label), in (user_id, start) order.
    """
    if log.empty:
        return pd.DataFrame(columns=["session_key", "user_id", "start", "items"])
    frame = log[["user_id", "item_id", "timestamp"]].copy()
    frame["_order_key"] = frame["item_id"].astype(str)
    frame = frame.sort_values(["user_id", "timestamp", "_order_key"], kind="stable")
    if by == "day":
        frame["_part"] = (frame["timestamp"] // SECONDS_PER_DAY).astype(np.int64)
    elif by == "gap":
        new_session = frame["timestamp"].diff().fillna(np.inf).gt(gap_seconds) | frame["user_id"].ne(frame["user_id"].shift())
        frame["_part"] = new_session.cumsum()
    else:
        raise ValueError(f"unknown sessionization {by!r}; expected 'day' or 'gap'")
    if dedupe:
        frame = frame.drop_duplicates(["user_id", "_part", "item_id"], keep="first")
    grouped = frame.groupby(["user_id", "_part"], sort=False)
    sessions = grouped.agg(start=("timestamp", "min"), items=("item_id", list)).reset_index()
    sessions = sessions[sessions["items"].map(len) >= min_length]
    if max_length is not None:
        sessions["items"] = sessions["items"].map(lambda seq: seq[-max_length:])
    sessions = sessions.sort_values(["user_id", "start"], kind="stable").reset_index(drop=True)
    sessions["session_key"] = sessions["user_id"].astype(str) + ":" + sessions["_part"].astype(str)
    return sessions[["session_key", "user_id", "start", "items"]]


def random_split(n: int, ratios: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0) -> np.ndarray:
    """Seeded random assignment of n sessions to train/valid/test in the given ratios. Returns (n,) object array."""
    if n == 0:
        return np.array([], dtype=object)
    total = sum(ratios)
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(np.floor(ratios[0] / total * n))
    n_valid = int(np.floor((ratios[0] + ratios[1]) / total * n)) - n_train
    labels = np.empty(n, dtype=object)
    labels[order[:n_train]] = "train"
    labels[order[n_train:n_train + n_valid]] = "valid"
    labels[order[n_train + n_valid:]] = "test"
    return labels


def positional_split(n: int, ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> np.ndarray:
    """The ALKDRec authors' split: first floor(0.6n) train, up to floor(0.8n) valid, rest test."""
    total = sum(ratios)
    first = int(np.floor(ratios[0] / total * n))
    second = int(np.floor((ratios[0] + ratios[1]) / total * n))
    labels = np.empty(n, dtype=object)
    labels[:first], labels[first:second], labels[second:] = "train", "valid", "test"
    return labels


def to_session_frame(sessions: pd.DataFrame, split: np.ndarray) -> pd.DataFrame:
    """sessionize() output + split labels -> the `sessions` frame from_raw() takes (input = all but last item)."""
    return pd.DataFrame({
        "session_id": np.arange(len(sessions), dtype=np.int64),
        "items": [list(seq[:-1]) for seq in sessions["items"]],
        "label": [seq[-1] for seq in sessions["items"]],
        "split": split,
    })
