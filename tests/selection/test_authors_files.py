import numpy as np
import pytest

from core.data.errors import DataError
from core.selection import select
from core.selection.authors_files import recorded_picks, with_recorded_picks


def test_recorded_picks_read_the_first_lines(tmp_path):
    (tmp_path / "ML").mkdir()
    (tmp_path / "ML" / "ML_RAD-BC.base").write_text("7\n3\n9\n1\n")
    assert recorded_picks(tmp_path, "ML", "rad-bc", 3).tolist() == [7, 3, 9]
    with pytest.raises(DataError, match="holds 4 picks, fewer than the budget 5"):
        recorded_picks(tmp_path, "ML", "rad-bc", 5)
    with pytest.raises(DataError, match="ML_hardest.base: file is missing"):
        recorded_picks(tmp_path, "ML", "hardest", 1)
    with pytest.raises(ValueError, match="no selection for 'tr'"):
        recorded_picks(tmp_path, "ML", "tr", 1)


def test_recorded_picks_replace_the_drawn_ones_and_keep_the_pool():
    ids = np.arange(10, 20)
    drawn = select("alkdrec", ids, np.linspace(0, 1, 10), 3, seed=0)
    replaced = with_recorded_picks(drawn, np.array([12, 19]))
    assert replaced.picked_ids.tolist() == [12, 19]
    assert replaced.frame["probability"].equals(drawn.frame["probability"])
    assert replaced.tau == 2 and replaced.frame["picked"].sum() == 2
    with pytest.raises(ValueError, match="not in the pool"):
        with_recorded_picks(drawn, np.array([99]))
