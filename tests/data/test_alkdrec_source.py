import shutil

import pytest

from core.data.errors import DataError
from core.data.sources import build

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name, sessions, items, interactions, split", [
    ("alkdrec-ml", 12_323, 8_475, 112_034, (7_393, 2_465, 2_465)),
    ("alkdrec-games", 20_091, 26_138, 132_677, (12_054, 4_018, 4_019)),
])
def test_statistics_and_split_match_the_paper(alkdrec_dir, name, sessions, items, interactions, split):
    ds = build(name, alkdrec_dir)
    stats = ds.stats()
    assert (stats.n_sessions, stats.n_items, stats.n_interactions) == (sessions, items, interactions)
    assert (stats.n_train, stats.n_valid, stats.n_test) == split
    # the authors' positional split: session ids 0..n_train-1 are training
    train_ids = ds.sessions.loc[ds.sessions["split"] == "train", "session_id"]
    assert train_ids.tolist() == list(range(split[0]))
    assert ds.meta["max_len"] == 10


def test_ids_are_the_authors_plus_one(alkdrec_dir):
    ds = build("alkdrec-ml", alkdrec_dir)
    # ML_title.csv row 0 is "Toy story": the authors' id 0, our id 1 (0 is padding only)
    assert ds.items.loc[0, "title"] == "Toy story" and ds.items.loc[0, "item_id"] == 1
    # the recorded LLM hit position of the first line is reproducible from our labels
    line = (alkdrec_dir / "ML/ML_LLM_Database.data").read_text().splitlines()[1].split("\t")
    session_id, ranking, hit = int(line[0]), eval(line[1], {}), int(line[2])  # literal list of ints
    label = int(ds.sessions.loc[ds.sessions["session_id"] == session_id, "label"].iloc[0])
    assert (ranking.index(label - 1) if label - 1 in ranking else 25) == hit


def test_a_tampered_file_is_refused_before_unpickling(alkdrec_dir, tmp_path):
    copy = tmp_path / "alkdrec"
    shutil.copytree(alkdrec_dir / "ML", copy / "ML")
    (copy / "ML" / "ML.pkl").chmod(0o644)
    with (copy / "ML" / "ML.pkl").open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(DataError, match=r"ML\.pkl.*SHA-256 .* does not match"):
        build("alkdrec-ml", copy)


def test_a_missing_file_names_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"ML_title\.csv: file is missing \(fix: pass the folder"):
        build("alkdrec-ml", tmp_path)
