"""hetrec2011: raw Hetrec2011-MovieLens files -> user-day sessions (ALKDRec rules), titles, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.errors import DataError
from core.data.sources import build

DAY_MS = 86_400_000
DAY0 = 1_162_166_400_000  # 2006-10-30T00:00:00Z in Unix milliseconds
RATINGS = "user_ratedmovies-timestamps.dat"
MOVIES_HEADER = ("id\ttitle\timdbID\tspanishTitle\timdbPictureURL\tyear\trtID\trtAllCriticsRating\t"
                 "rtAllCriticsNumReviews")


def movie_row(movie: int, title: str, year: str = "1995") -> str:
    return f"{movie}\t{title}\t0114709\t{title} (es)\thttp://ia.media-imdb.com/{movie}.jpg\t{year}\tslug_{movie}\t9\t73"


def write(tmp_path: Path, ratings: list[tuple[int, int, float, int]], movies: dict[int, str] | None = None,
          genres: list[tuple[int, str]] | None = None) -> Path:
    """Files in the release's format: tab-separated with a header, Latin-1."""
    lines = ["userID\tmovieID\trating\ttimestamp"] + [f"{u}\t{m}\t{r}\t{t}" for u, m, r, t in ratings]
    (tmp_path / RATINGS).write_text("\n".join(lines) + "\n", encoding="latin-1")
    if movies is None:
        movies = {m: f"Movie {m}" for _, m, _, _ in ratings}
    rows = [MOVIES_HEADER] + [movie_row(m, title) for m, title in movies.items()]
    (tmp_path / "movies.dat").write_text("\n".join(rows) + "\n", encoding="latin-1")
    if genres is not None:
        text = "movieID\tgenre\n" + "".join(f"{m}\t{g}\n" for m, g in genres)
        (tmp_path / "movie_genres.dat").write_text(text, encoding="latin-1")
    return tmp_path


def raw_sessions(dataset) -> list[list[str]]:
    """Each session as raw movie ids, inputs then label, in session-id order."""
    raw = list(dataset.items["raw_id"])
    return [[raw[i - 1] for i in seq] + [raw[label - 1]]
            for seq, label in zip(dataset.sessions["items"], dataset.sessions["label"])]


def day_session(user: int, movies: list[int], day: int, start_ms: int = 1000) -> list[tuple[int, int, float, int]]:
    return [(user, m, 4.0, DAY0 + day * DAY_MS + start_ms + k * 60_000) for k, m in enumerate(movies)]


def test_user_day_sessions_dedupe_order_and_filter(tmp_path: Path) -> None:
    ratings = [
        # user 75, day 0: a repeat of 32 (dropped), a tie on the timestamp (10 before 12), the day's last millisecond
        (75, 50, 3.5, DAY0 + 5_000), (75, 32, 4.0, DAY0 + 1_000), (75, 12, 4.0, DAY0 + 3_000),
        (75, 10, 4.0, DAY0 + 3_000), (75, 32, 5.0, DAY0 + 4_000), (75, 7, 2.0, DAY0 + DAY_MS - 1),
        # user 75, day 1 from its first millisecond: 5 records but only 4 distinct movies -> dropped
        (75, 1, 4.0, DAY0 + DAY_MS), (75, 2, 4.0, DAY0 + DAY_MS + 1), (75, 3, 4.0, DAY0 + DAY_MS + 2),
        (75, 2, 4.0, DAY0 + DAY_MS + 3), (75, 4, 4.0, DAY0 + DAY_MS + 4),
        # user 78: seven movies on one day
        *day_session(78, [21, 22, 23, 24, 25, 26, 27], day=3),
    ]
    dataset = build("hetrec2011", write(tmp_path, ratings))
    assert raw_sessions(dataset) == [["32", "10", "12", "50", "7"], ["21", "22", "23", "24", "25", "26", "27"]]
    assert dataset.name == dataset.source == "hetrec2011"
    assert dataset.meta["max_len"] == 20
    # items are exactly the movies in sessions, ids 1..n
    assert sorted(dataset.items["raw_id"]) == sorted({"32", "10", "12", "50", "7", *map(str, range(21, 28))})
    assert list(dataset.items["item_id"]) == list(range(1, 13))


def test_max_length_keeps_the_last_items_and_titles_genres_year(tmp_path: Path) -> None:
    ratings = day_session(5, [1, 2, 3, 4, 5, 6, 7], day=0)
    movies = {m: f"Movie {m}" for m in range(1, 8)} | {2: "Amélie", 99: "Never rated"}
    genres = [(2, "Comedy"), (2, "Romance"), (3, "Drama"), (99, "Horror")]
    dataset = build("hetrec2011", write(tmp_path, ratings, movies, genres), max_length=5)
    assert raw_sessions(dataset) == [["3", "4", "5", "6", "7"]]
    assert dataset.meta["max_len"] == 5
    build_titles = build("hetrec2011", tmp_path, max_length=7)
    items = build_titles.items.set_index("raw_id")
    assert items.loc["2", "title"] == "Amélie"  # Latin-1 decoded
    assert items.loc["2", "genres"] == "Comedy|Romance"
    assert items.loc["1", "year"] == 1995
    assert "99" not in items.index  # catalogue rows for movies in no session are ignored
    assert raw_sessions(build_titles)[0][-1] == "7"  # label = last item


def test_random_split_6_2_2_is_seeded(tmp_path: Path) -> None:
    ratings = [row for user in range(10) for row in day_session(user, [100 + user * 10 + k for k in range(5)], day=1)]
    write(tmp_path, ratings)
    first = build("hetrec2011", tmp_path, seed=3)
    counts = first.sessions["split"].value_counts()
    assert (counts["train"], counts["valid"], counts["test"]) == (6, 2, 2)
    again = build("hetrec2011", tmp_path, seed=3)
    assert list(again.sessions["split"]) == list(first.sessions["split"])
    other = build("hetrec2011", tmp_path, seed=4)
    assert list(other.sessions["split"]) != list(first.sessions["split"])


def error(tmp_path: Path, **options) -> str:
    with pytest.raises(DataError) as info:
        build("hetrec2011", tmp_path, **options)
    return str(info.value)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="hetrec2011.*directory"):
        build("hetrec2011", None)
    message = error(tmp_path)
    assert RATINGS in message and "not found" in message and "fix:" in message
    (tmp_path / RATINGS).write_text("userID\tmovieID\trating\ttimestamp\n")
    message = error(tmp_path)
    assert "movies.dat" in message and "not found" in message


def test_missing_column_is_named_with_the_columns_present(tmp_path: Path) -> None:
    write(tmp_path, day_session(1, [1, 2, 3, 4, 5], day=0))
    (tmp_path / RATINGS).write_text("userID\tmovieID\trating\n1\t2\t3.0\n")
    message = error(tmp_path)
    assert RATINGS in message and "line 1" in message and "field 'timestamp'" in message
    assert "'userID', 'movieID', 'rating'" in message


def test_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    rows = day_session(1, [1, 2, 3, 4, 5], day=0)
    write(tmp_path, rows)
    text = (tmp_path / RATINGS).read_text().splitlines()
    text[3] = "1\t3\t4.0\tyesterday"  # line 4 of the file
    (tmp_path / RATINGS).write_text("\n".join(text) + "\n")
    message = error(tmp_path)
    assert f"{RATINGS}, line 4, field 'timestamp'" in message and "'yesterday'" in message


def test_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, day_session(1, [1, 2, 3, 4, 5], day=0))
    with (tmp_path / RATINGS).open("a") as handle:
        handle.write("1\t9\t4.0\t1162166400000\textra\n")
    message = error(tmp_path)
    assert RATINGS in message and "line 7" in message and "fields" in message


def test_duplicate_movie_id(tmp_path: Path) -> None:
    write(tmp_path, day_session(1, [1, 2, 3, 4, 5], day=0))
    with (tmp_path / "movies.dat").open("a", encoding="latin-1") as handle:
        handle.write(movie_row(3, "Again") + "\n")
    message = error(tmp_path)
    assert "movies.dat, line 7, field 'id'" in message and "'3'" in message and "line 4" in message


def test_rated_movie_without_a_title_row(tmp_path: Path) -> None:
    write(tmp_path, day_session(1, [1, 2, 3, 4, 5], day=0), movies={1: "a", 2: "b", 3: "c", 5: "e"})
    message = error(tmp_path)
    assert f"{RATINGS}, line 5, field 'movieID'" in message and "'4'" in message and "movies.dat" in message


def test_nothing_left_after_filtering(tmp_path: Path) -> None:
    write(tmp_path, day_session(1, [1, 2, 3, 4], day=0) + day_session(2, [1, 2, 3, 3, 4], day=0))
    message = error(tmp_path)
    assert RATINGS in message and "no sessions left" in message and "min_length=5" in message


def test_bad_option(tmp_path: Path) -> None:
    write(tmp_path, day_session(1, [1, 2, 3, 4, 5], day=0))
    assert "max_length" in error(tmp_path, max_length=3)
