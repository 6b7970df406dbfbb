"""Finding WordNet: NLTK's path, a user directory, system files assembled atomically, errors."""

import threading
from pathlib import Path

import numpy as np
import pytest

from geoprobe.datasets import wordnet as W

SYSTEM = next((d for d in W.system_dict_dirs() if W._is_dict_dir(d)), None)


@pytest.fixture
def no_nltk_data(monkeypatch, tmp_path):
    """NLTK's own data path holds no WordNet; the cache lives in tmp_path."""
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    monkeypatch.setenv("GEOPROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GEOPROBE_WORDNET", raising=False)
    return tmp_path


def test_system_wordnet_is_installed_here():
    # CI installs wordnet-base and wordnet-sense-index: the taxonomy tests rely on it
    assert SYSTEM is not None, "install wordnet-base and wordnet-sense-index"


def test_lexnames_has_45_numbered_lines():
    lines = W.lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[5] == "05\tnoun.animal\t1" and lines[44] == "44\tadj.ppl\t3"
    assert {int(line.split("\t")[2]) for line in lines} == {1, 2, 3, 4}


@pytest.mark.filterwarnings("ignore:The multilingual functions")
def test_system_files_are_assembled_once_and_load(no_nltk_data):
    root, how = W.locate_wordnet()
    assert how.startswith("system files") and root == no_nltk_data / "cache" / "nltk_data"
    corpus = root / "corpora" / "wordnet"
    assert (corpus / "lexnames").read_text() == W.lexnames_text(SYSTEM)
    assert not any(p.is_symlink() for p in corpus.iterdir())
    mtime = (corpus / "data.noun").stat().st_mtime_ns
    assert W.locate_wordnet()[0] == root
    assert (corpus / "data.noun").stat().st_mtime_ns == mtime  # not copied again
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    import nltk

    nltk.data.path.append(str(root))
    wn = WordNetCorpusReader(nltk.data.find("corpora/wordnet"), None)
    assert wn.synset("dog.n.01").lexname() == "noun.animal"


def test_concurrent_first_runs_do_not_corrupt_the_cache(tmp_path):
    cache = tmp_path / "nltk"
    errors, roots = [], []

    def build():
        try:
            roots.append(W.assemble_nltk_wordnet(SYSTEM, cache))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(roots) == {cache}
    corpus = cache / "corpora" / "wordnet"
    for name in W.REQUIRED_FILES:
        assert (corpus / name).stat().st_size == (SYSTEM / name).stat().st_size
    assert not [p for p in (cache / "corpora").iterdir() if p.name.startswith(".wordnet")]


def test_user_directory_comes_before_system_files(no_nltk_data, monkeypatch):
    user = no_nltk_data / "mywn"
    user.mkdir()
    for name in W.REQUIRED_FILES:
        (user / name).write_bytes((SYSTEM / name).read_bytes())
    monkeypatch.setenv("GEOPROBE_WORDNET", str(user))
    root, how = W.locate_wordnet()
    assert how == f"user directory {user}"
    assert (root / "corpora" / "wordnet" / "lexnames").exists()


def test_nltk_data_path_comes_first(no_nltk_data, monkeypatch):
    import nltk

    fake = no_nltk_data / "nltk_data"
    (fake / "corpora" / "wordnet").mkdir(parents=True)
    monkeypatch.setattr(nltk.data, "path", [str(fake)])
    assert W.locate_wordnet() == (fake, "nltk data path")


def test_nothing_found_says_how_to_get_it(no_nltk_data, monkeypatch):
    monkeypatch.setattr(W, "SYSTEM_DIRS", ())
    monkeypatch.delenv("WNHOME", raising=False)
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    with pytest.raises(W.WordNetNotFound, match="apt-get install wordnet-base.*nltk.*GEOPROBE_"):
        W.locate_wordnet()
    with pytest.raises(W.WordNetNotFound, match="does not exist"):
        W.locate_wordnet(no_nltk_data / "nowhere")
    incomplete = no_nltk_data / "half"
    incomplete.mkdir()
    (incomplete / "data.noun").write_text("")
    (incomplete / "index.noun").write_text("")
    with pytest.raises(W.WordNetNotFound, match="missing data.verb"):
        W.locate_wordnet(incomplete)


def test_noun_data_arrays():
    d = W.noun_data()
    names = d["names"]
    assert names.shape == (82115,) and names[0] == "entity.n.01"
    i = int(np.searchsorted(d["lemmas"].astype(str), "dog"))
    assert d["lemmas"][i] == "dog"
    senses = names[d["lemma_synsets"][d["lemma_offsets"][i]:d["lemma_offsets"][i + 1]]]
    assert senses[0] == "dog.n.01" and len(senses) == 7
    assert Path(W.cache_root()).exists()
