"""The ALKDRec authors' preprocessed Hetrec2011-ML and Amazon-Games sessions (Du et al., AAAI 2025).

Files come from a local directory (`alkd data fetch alkdrec-ml --from DIR`) or are downloaded from the authors'
repository pinned at one commit; either way every file is checked against the pinned SHA-256 list below before it
is read. The session files are pandas pickles, and unpickling runs code: we load them ONLY after the checksum matched.

Reproduced exactly (the recorded GPT-4 rankings are keyed by these): internal item index = the item's row in the
title CSV (our id = that index + 1, 0 stays padding); session items missing from the title CSV are dropped, then
sessions whose label is unknown or whose input became empty; session id = the row position after that; split =
first floor(0.6 n) / next up to floor(0.8 n) / rest, in the shipped row order. Models see the last 10 inputs.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

import pandas as pd

from core.data.dataset import SessionDataset, from_raw
from core.data.errors import DataError
from core.data.sessionize import positional_split
from core.data.sources import register
from core.paths import downloads_dir

REPO = "kk97111/ALKDRec"
COMMIT = "5ae01ad323670f0d086e3bb3ae9bf42c1df6dfd3"
URL = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/datasets/{{path}}"
WINDOW = 10

SHA256 = {
    "Games/Games.pkl": "a933eb962bfda8a80e7c9e91f5aad25c5e05460df2525382e10513e1c9bea5e6",
    "Games/Games_ALKERec.base": "9f4e33d63fd5d818bb4a738ca42d17d77be1fd0dd2760248210359358a44dad0",
    "Games/Games_LLM_Database.data": "96579d428984b1dec9f15230c682be164f7e9db76b7848413a83b04c7cdc5612",
    "Games/Games_RAD-BC.base": "b75595a0e3116233d636954e29e04b8bce9554152be5a81809131328f2cb6b35",
    "Games/Games_easiest.base": "3f4b9a8ce11bf8f33c9225871fe0fa733d3c4d838dd3daf0b04df169e71d739d",
    "Games/Games_hardest.base": "aa680b906ba2ab03f979d4701f04489d6a0c06fd8147f9113c23e54c4d93e73c",
    "Games/Games_random.base": "35813163ded72ec1f106692d78a2c2197eeea6ab2721db21b71eba076fd6957c",
    "Games/Games_title.csv": "f77fc2467d4a721bd99f9eeceb7766e0afd419909d24821dfd91523a333be7bb",
    "ML/ML.pkl": "d955b502b759399ba5683ac4dcf7bdba0ef6b1e41ad2eff216fd47c1658c2c69",
    "ML/ML_ALKERec.base": "cdf22fc05f53d47288b334a5bf00184f6f5b51e5decaddc3c3090fd749a18a53",
    "ML/ML_LLM_Database.data": "355d21770ef36fb561f6d42ec5a8932b596ca03ca3559f754144f192438a6f36",
    "ML/ML_RAD-BC.base": "974fb430357e54e45c2ce19bc9431f909aad4cca6085d0935d35a44a162a6873",
    "ML/ML_easiest.base": "6a833dcaed1ef1d739c0409dcb0bbf418ca613e4cb8f8c5504f182ab98921259",
    "ML/ML_hardest.base": "4d9db6d863340914049d808aa8605fc1e89c30baab667421aabc50e2c677d716",
    "ML/ML_random.base": "cb5239cd04dcdfdef65a3437a0d6609588cda63c7c766f61f1f8c521d08367ca",
    "ML/ML_title.csv": "fc79ceff08f59bfbac454fa80965c34f890269291fa2c3456903960a1f313dc3",
}
PREFIX = {"alkdrec-ml": "ML", "alkdrec-games": "Games"}
DOMAIN = {"alkdrec-ml": "movies", "alkdrec-games": "games"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(root: Path, relative: str) -> Path:
    """`root/relative` after checking its SHA-256 against the pinned list; a clear DataError otherwise."""
    path = root / relative
    if not path.exists():
        raise DataError("file is missing", file=path,
                        fix=f"pass the folder holding ML/ and Games/ from {REPO}@{COMMIT[:7]} datasets/")
    actual = sha256_of(path)
    if actual != SHA256[relative]:
        raise DataError(f"SHA-256 {actual} does not match the pinned {SHA256[relative]}", file=path,
                        fix=f"use the files of {REPO} at commit {COMMIT}")
    return path


def verified_folder(root: Path, prefix: str) -> Path:
    """`root` after checking every pinned file of `prefix` ("ML" or "Games") in it, e.g. before a replay run reads
    the recorded rankings and picks again: an edited file is refused (DataError), never used."""
    for relative in SHA256:
        if relative.startswith(prefix + "/"):
            verified_file(root, relative)
    return root


def download(prefix: str, target: Path) -> Path:
    """Download one dataset's files from the pinned commit into `target`, verifying each; returns `target`."""
    for relative in (r for r in SHA256 if r.startswith(prefix + "/")):
        path = target / relative
        if path.exists() and sha256_of(path) == SHA256[relative]:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        try:
            with urllib.request.urlopen(URL.format(path=relative), timeout=60) as response, partial.open("wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise DataError(f"download failed ({error})", file=URL.format(path=relative),
                            fix="no network? fetch with --from DIR pointing at a local copy") from error
        partial.replace(path)
        verified_file(target, relative)
    return target


def load_sessions(name: str, root: Path) -> SessionDataset:
    prefix = PREFIX[name]
    titles_path = verified_file(root, f"{prefix}/{prefix}_title.csv")
    pickle_path = verified_file(root, f"{prefix}/{prefix}.pkl")
    titles = pd.read_csv(titles_path, dtype={"itemID": str, "title": str}, keep_default_na=False)
    # Safe only because the checksum above matched the pinned, reviewed file: unpickling executes code.
    raw = pd.read_pickle(pickle_path)
    known = set(titles["itemID"])
    inputs, labels = [], []
    for seq, label in zip(raw["session"], raw["label"]):
        kept = [str(item) for item in seq if str(item) in known]
        if str(label) in known and kept:
            inputs.append(kept)
            labels.append(str(label))
    sessions = pd.DataFrame({"session_id": range(len(inputs)), "items": inputs, "label": labels,
                             "split": positional_split(len(inputs))})
    items = pd.DataFrame({"raw_id": titles["itemID"], "title": titles["title"]})
    meta = {"max_len": WINDOW, "domain": DOMAIN[name], "source_dir": str(root.resolve()),
            "origin": f"{REPO}@{COMMIT}", "llm_records": f"{prefix}/{prefix}_LLM_Database.data"}
    return from_raw(name, name, items, sessions, file=pickle_path, meta=meta)


def _builder(name: str):
    def build(from_dir: Path | None = None) -> SessionDataset:
        root = Path(from_dir) if from_dir is not None else download(PREFIX[name], downloads_dir() / "alkdrec")
        return load_sessions(name, root)
    build.__name__ = f"build_{PREFIX[name].lower()}"
    return build


register("alkdrec-ml", "ALKDRec authors' Hetrec2011-ML sessions + recorded GPT-4-turbo rankings")(
    _builder("alkdrec-ml"))
register("alkdrec-games", "ALKDRec authors' Amazon-Games sessions + recorded GPT-4-turbo rankings")(
    _builder("alkdrec-games"))
