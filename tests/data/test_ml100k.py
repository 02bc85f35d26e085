import pytest

from core.data.errors import DataError
from core.data.sources import build

DAY = 86_400


def write_atomic(folder, inter_rows, item_rows):
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t4\t{t}\n" for u, i, t in inter_rows)
    item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n" + "".join(
        f"{i}\t{title}\t1995\tAction Comedy\n" for i, title in item_rows)
    (folder / "ml-100k.inter").write_text(inter)
    (folder / "ml-100k.item").write_text(item)


def test_user_day_sessions_from_recbole_files(tmp_path):
    # user 1: six items on day 0 (two tie at t=5 -> ordered by item id), two on day 1 (dropped, < 5)
    rows = [(1, 6, 5), (1, 2, 5), (1, 3, 9), (1, 4, 12), (1, 5, 20), (1, 1, 30), (1, 7, DAY + 1), (1, 8, DAY + 2)]
    rows += [(2, i, 100 + i) for i in (8, 7, 6, 5, 4)]
    write_atomic(tmp_path, rows, [(i, f"Movie {i}") for i in range(1, 9)])
    ds = build("ml-100k", tmp_path, min_length=5)
    titles = dict(zip(ds.items["item_id"], ds.items["title"]))
    as_titles = [[titles[i] for i in seq] + [titles[label]] for seq, label in zip(ds.sessions["items"],
                                                                                   ds.sessions["label"])]
    assert as_titles == [[f"Movie {i}" for i in (2, 6, 3, 4, 5, 1)], [f"Movie {i}" for i in (4, 5, 6, 7, 8)]]
    assert ds.items["genres"].iloc[0] == "Action|Comedy" and ds.items["year"].iloc[0] == 1995


def test_bad_timestamp_names_line_and_field(tmp_path):
    write_atomic(tmp_path, [(1, 1, 5), (1, 2, "soon")], [(1, "A"), (2, "B")])
    with pytest.raises(DataError, match=r"ml-100k\.inter, line 3, field 'timestamp'"):
        build("ml-100k", tmp_path)


def test_missing_column_lists_what_the_file_has(tmp_path):
    (tmp_path / "ml-100k.inter").write_text("user_id:token\titem:token\ttimestamp:float\n1\t2\t3\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['item_id'\]; the file has"):
        build("ml-100k", tmp_path)


@pytest.mark.integration
def test_the_real_wheel_gives_the_documented_sessions(tmp_path):
    """Downloads the pinned RecBole wheel from the package registry (2 MB)."""
    try:
        ds = build("ml-100k")
    except DataError as error:
        pytest.skip(f"package registry unreachable: {error}")
    stats = ds.stats()
    assert stats.n_sessions == 1_642
    assert stats.n_train + stats.n_valid + stats.n_test == 1_642
    assert stats.max_length == 50
