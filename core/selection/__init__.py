"""Active instance selection (spec sections 5, 6 and 8): difficulty, gains, the max-min policy p*, strategies.

Public entry points:

- `consistency` / `difficulty` (difficulty.py): the per-session key c_s and df_s = -c_s.
- `max_min_policy`, `rad_bc_policy` (alkdrec.py): k*, Gamma and p* computed in log space.
- `select` (strategies.py): pick tau sessions by a registered strategy name; returns a `Selection`.
- `categorize` (categories.py): effective / similar / incorrect labels once the LLM has answered.
"""

from __future__ import annotations

from core.selection.alkdrec import (
    MODES,
    PolicyResult,
    max_min_policy,
    rad_bc_policy,
    sample_authors_code,
    sample_paper,
)
from core.selection.categories import CATEGORIES, CategoryResult, categorize
from core.selection.difficulty import consistency, difficulty, hardest_first_order
from core.selection.gains import (
    DEFAULT_MU,
    DEFAULT_RATIOS,
    Counts,
    Gains,
    Ratios,
    category_counts,
    gains,
    normalise_ratios,
    validate_mu,
)
from core.selection.strategies import Selection, available_strategies, register_strategy, select

__all__ = [
    "CATEGORIES", "DEFAULT_MU", "DEFAULT_RATIOS", "MODES", "CategoryResult", "Counts", "Gains", "PolicyResult",
    "Ratios", "Selection", "available_strategies", "categorize", "category_counts", "consistency", "difficulty",
    "gains", "hardest_first_order", "max_min_policy", "normalise_ratios", "rad_bc_policy", "register_strategy",
    "sample_authors_code", "sample_paper", "select", "validate_mu",
]
