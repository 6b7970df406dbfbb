"""WordNet 3.0 through NLTK, found without a network, and its noun data as compact arrays.

Where WordNet is looked for, in order (:func:`load_wordnet`):

1. NLTK's own data path (``nltk.data.path``: a user who ran ``nltk.download("wordnet")``, or
   ``NLTK_DATA``);
2. a directory the user names (the ``path`` argument or ``$GEOPROBE_WORDNET``): either an NLTK
   data root holding ``corpora/wordnet`` or a directory of WordNet dictionary files
   (``data.noun``, ``index.noun``, ...);
3. the system's WordNet dictionary files: ``$WNSEARCHDIR``, ``$WNHOME/dict``, Debian and
   Ubuntu's ``/usr/share/wordnet`` (packages ``wordnet-base`` and ``wordnet-sense-index``),
   ``/usr/local/WordNet-3.0/dict``.

Dictionary files (cases 2 and 3) are not an NLTK corpus as they stand: NLTK also wants a
``lexnames`` file (Debian ships none) and refuses symlinks that leave its data root. They are
therefore copied once into ``<cache>/corpora/wordnet/`` with a generated ``lexnames``, where
``<cache>`` is ``$GEOPROBE_CACHE/nltk_data``, else ``$XDG_CACHE_HOME/geoprobe/nltk_data``, else
``~/.cache/geoprobe/nltk_data``. The copy is built in a private temporary directory and renamed
into place, so concurrent first runs never see a half-written corpus: the first rename wins and
the others discard their copy.

Reading 82,115 noun synsets through NLTK takes 5-15 s, so :func:`noun_data` keeps what the
taxonomy code needs (synset names, hypernym edges, lemma-to-synset lists in sense order) in a
``.npz`` beside the cache, keyed by the WordNet files it came from; later runs load it in well
under a second.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np

from geoprobe.embeddings import staged_dir
from geoprobe.errors import GeoprobeError
from geoprobe.provenance import atomic_path, cache_root

#: the WordNet lexicographer files (identical in WordNet 3.0 and 3.1); see lexnames(5WN)
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_MAN_PAGES = ("/usr/share/man/man5/lexnames.5WN.gz", "/usr/share/man/man5/lexnames.5WN")
SYSTEM_DIRS = ("/usr/share/wordnet", "/usr/local/WordNet-3.0/dict", "/usr/share/wordnet/dict",
               "/opt/local/share/WordNet-3.0/dict")
#: files NLTK's WordNet reader opens (index.sense is optional but gives sense keys)
REQUIRED_FILES = ("data.noun", "index.noun", "data.verb", "index.verb", "data.adj", "index.adj",
                  "data.adv", "index.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc")
_OPTIONAL_FILES = ("index.sense", "cntlist", "cntlist.rev", "lexnames", "frames.vrb",
                   "sents.vrb", "sentidx.vrb", "LICENSE", "README", "citation.bib")

REMEDY = ("install WordNet with one of: `apt-get install wordnet-base wordnet-sense-index` "
          "(Debian/Ubuntu); `python -m nltk.downloader wordnet` (needs the internet); or point "
          "geoprobe at a directory holding WordNet's dictionary files (data.noun, index.noun, "
          "...) or an NLTK data root, with GEOPROBE_WORDNET=DIR or path=DIR")


class WordNetNotFound(GeoprobeError):
    """No usable WordNet anywhere geoprobe looks."""


def _is_dict_dir(path: Path) -> bool:
    return all((path / f).is_file() for f in ("data.noun", "index.noun"))


def _missing_files(path: Path) -> list[str]:
    return [f for f in REQUIRED_FILES if not (path / f).is_file()]


def system_dict_dirs() -> list[Path]:
    """Candidate system directories of WordNet dictionary files, most specific first."""
    dirs = []
    if os.environ.get("WNSEARCHDIR"):
        dirs.append(Path(os.environ["WNSEARCHDIR"]))
    if os.environ.get("WNHOME"):
        dirs.append(Path(os.environ["WNHOME"]) / "dict")
    dirs.extend(Path(d) for d in SYSTEM_DIRS)
    return dirs


def lexnames_text(dict_dir: Path | None = None) -> str:
    """The ``lexnames`` file: 45 lines ``NN<TAB>lexname<TAB>posnum``.

    Copied from the dictionary directory when it has one; otherwise read from the
    ``lexnames(5WN)`` man page when installed, and checked against :data:`LEXNAMES`; otherwise
    generated from :data:`LEXNAMES` (the file numbers are fixed across WordNet 3.x).
    """
    if dict_dir is not None and (dict_dir / "lexnames").is_file():
        return (dict_dir / "lexnames").read_text()
    names = list(LEXNAMES)
    for page in _MAN_PAGES:
        if os.path.exists(page):
            opener = gzip.open if page.endswith(".gz") else open
            with opener(page, "rt", errors="replace") as fh:
                rows = re.findall(r"^(\d\d)\t(\S+)\t", fh.read(), flags=re.M)
            parsed = [name for _, name in sorted(rows)]
            if len(parsed) == len(LEXNAMES) and [int(n) for n, _ in sorted(rows)] == list(
                    range(len(LEXNAMES))):
                names = parsed
            break
    return "".join(f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n"
                   for i, name in enumerate(names))


def assemble_nltk_wordnet(dict_dir, cache: Path | None = None) -> Path:
    """Copy WordNet dictionary files into ``<cache>/corpora/wordnet`` once; returns ``<cache>``.

    Parameters
    ----------
    dict_dir : path of a directory with WordNet's dictionary files.
    cache : the NLTK data root to build (default ``cache_root()/"nltk_data"``).

    The copy is atomic: it is written to a hidden sibling under the target's writer lock and
    swapped into place (:func:`geoprobe.embeddings.staged_dir`), so a concurrent process
    finds no corpus or a complete one, and what a killed copy left is removed by the next.
    """
    dict_dir = Path(dict_dir)
    cache = Path(cache) if cache is not None else cache_root() / "nltk_data"
    target = cache / "corpora" / "wordnet"
    if (target / "data.noun").is_file() and (target / "lexnames").is_file():
        return cache
    missing = _missing_files(dict_dir)
    if missing:
        raise WordNetNotFound(f"{dict_dir}: not a complete WordNet dictionary directory "
                              f"(missing {', '.join(missing)}); {REMEDY}")
    with staged_dir(target) as tmp:
        for name in REQUIRED_FILES + _OPTIONAL_FILES:
            src = dict_dir / name
            if src.is_file():
                shutil.copyfile(src, tmp / name)  # real files: NLTK refuses escaping symlinks
        if not (tmp / "lexnames").exists():
            (tmp / "lexnames").write_text(lexnames_text(dict_dir))
    return cache


def _nltk_root_with_wordnet(path: Path) -> Path | None:
    for corpus in ("corpora/wordnet", "corpora/wordnet.zip"):
        if (path / corpus).exists():
            return path
    return None


def locate_wordnet(path=None) -> tuple[Path, str]:
    """Find WordNet; returns ``(nltk_data_root, how)`` where ``how`` says which rule found it.

    Raises :class:`WordNetNotFound` with the remedies when nothing is found.
    """
    import nltk

    try:
        found = nltk.data.find("corpora/wordnet")
    except LookupError:
        try:
            found = nltk.data.find("corpora/wordnet.zip")
        except LookupError:
            found = None
    if found is not None:
        root = Path(str(found).split("corpora")[0].rstrip("/").rstrip("\\"))
        return root, "nltk data path"
    user = path or os.environ.get("GEOPROBE_WORDNET")
    if user:
        user = Path(user).expanduser()
        if not user.exists():
            raise WordNetNotFound(f"WordNet directory {user} does not exist; {REMEDY}")
        root = _nltk_root_with_wordnet(user)
        if root is not None:
            return root, "user directory (NLTK data root)"
        for cand in (user, user / "dict"):
            if _is_dict_dir(cand):
                return assemble_nltk_wordnet(cand, cache_root() / "nltk_data"
                                             / hashlib.sha1(str(cand.resolve()).encode())
                                             .hexdigest()[:12]), f"user directory {cand}"
        raise WordNetNotFound(f"{user} holds neither corpora/wordnet nor WordNet dictionary "
                              f"files (data.noun, index.noun); {REMEDY}")
    for cand in system_dict_dirs():
        if _is_dict_dir(cand):
            return assemble_nltk_wordnet(cand), f"system files {cand}"
    raise WordNetNotFound("WordNet not found on NLTK's data path "
                          f"({os.pathsep.join(nltk.data.path)}), in $GEOPROBE_WORDNET, nor in "
                          f"{', '.join(str(d) for d in system_dict_dirs())}; {REMEDY}")


@lru_cache(maxsize=4)
def load_wordnet(path=None):
    """NLTK's WordNet corpus reader, found as described in the module docstring (memoised per
    ``path``: loading takes seconds; the reader is read-only)."""
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root, _ = locate_wordnet(path)
    # NLTK's path security opens corpora only under nltk.data.path, so the root must be on it
    # (appended: the user's own entries keep their precedence).
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    corpus = root / "corpora" / "wordnet"
    if not corpus.exists():  # an nltk.download()ed zip: let NLTK's own loader open it
        from nltk.corpus import wordnet

        return wordnet
    with warnings.catch_warnings():  # "multilingual functions are not available": no OMW here
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(nltk.data.find(str(corpus.relative_to(root))), None)


#: bump when the cached arrays change meaning, so stale caches are rebuilt
_NOUN_DATA_FORMAT = 2


def _noun_data_key(root: Path) -> str:
    """Cache key: where the corpus lies and the size and mtime of the files it is read from."""
    corpus = root / "corpora" / "wordnet"
    files = ([corpus / "data.noun", corpus / "index.noun"] if corpus.is_dir()
             else [root / "corpora" / "wordnet.zip"])
    parts = [f"format {_NOUN_DATA_FORMAT}"]
    for p in files:
        st = p.stat()
        parts.append(f"{p.resolve()}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _pack(strings) -> np.ndarray:
    """Strings as one newline-joined byte array: a tenth of NumPy's fixed-width unicode."""
    return np.frombuffer("\n".join(strings).encode(), dtype=np.uint8)


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.array(packed.tobytes().decode().split("\n"), dtype=object)


def _build_noun_data(wn) -> dict[str, np.ndarray]:
    synsets = list(wn.all_synsets("n"))
    names = np.array([s.name() for s in synsets])
    index = {s: i for i, s in enumerate(names)}
    src, dst, kind = [], [], []
    for i, s in enumerate(synsets):
        for h in s.hypernyms():
            src.append(i), dst.append(index[h.name()]), kind.append(0)
        for h in s.instance_hypernyms():
            src.append(i), dst.append(index[h.name()]), kind.append(1)
    # Senses per lemma straight from index.noun (already in sense order): wn.synsets() would
    # also apply morphology (synsets("axes") includes ax.n.01) and is ten times slower.
    by_offset = {s.offset(): i for i, s in enumerate(synsets)}
    senses = {}
    with wn.abspath("index.noun").open() as fh:  # bytes: NLTK's text reader is far slower
        for raw in fh:
            if raw.startswith(b" "):  # license header
                continue
            parts = raw.decode("utf-8").split()
            n_synsets, n_pointers = int(parts[2]), int(parts[3])
            first = 4 + n_pointers + 2  # after the pointer symbols, sense_cnt, tagsense_cnt
            senses[parts[0]] = [by_offset[int(o)] for o in parts[first:first + n_synsets]]
    lemmas, lemma_synsets, offsets = [], [], [0]
    for lemma in sorted(senses):
        lemmas.append(lemma)
        lemma_synsets.extend(senses[lemma])
        offsets.append(len(lemma_synsets))
    return {"names": _pack(names), "edge_child": np.array(src, dtype=np.int64),
            "edge_parent": np.array(dst, dtype=np.int64), "edge_instance": np.array(kind, bool),
            "lemmas": _pack(lemmas), "lemma_synsets": np.array(lemma_synsets, dtype=np.int64),
            "lemma_offsets": np.array(offsets, dtype=np.int64),
            "version": np.array(wn.get_version())}


@lru_cache(maxsize=4)
def noun_data(path=None) -> dict[str, np.ndarray]:
    """WordNet's noun synsets, hypernym edges and lemmas as arrays (cached on disk).

    Returns a dict with
    ``names`` (n_synsets,) object array of str, e.g. ``"dog.n.01"``;
    ``edge_child``, ``edge_parent`` (n_edges,) int synset indices, one per hypernym link;
    ``edge_instance`` (n_edges,) bool, True for instance-hypernym links;
    ``lemmas`` (n_lemmas,) object array of str, sorted, as WordNet spells them (``"hot_dog"``);
    ``lemma_synsets`` and ``lemma_offsets``: the synsets of ``lemmas[i]`` in WordNet's sense
    order (most frequent first) are ``lemma_synsets[lemma_offsets[i]:lemma_offsets[i+1]]``;
    these are the lemma's own senses as ``index.noun`` lists them, without NLTK's morphology
    (``wn.synsets("axes")`` also returns the senses of ``ax`` and ``axis``).
    """
    root, _ = locate_wordnet(path)
    cache = cache_root() / f"wordnet-nouns-{_noun_data_key(root)}.npz"
    data = None
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError):
            data = None  # unreadable (a disk error): rebuild it below
    if data is None:
        data = _build_noun_data(load_wordnet(path))
        _save_npz_atomic(cache, data)
    data["names"], data["lemmas"] = _unpack(data["names"]), _unpack(data["lemmas"])
    for arr in data.values():  # memoised and shared by every caller: nobody may change it
        arr.setflags(write=False)
    return data


def _save_npz_atomic(cache: Path, data: dict) -> None:
    with atomic_path(cache, suffix=".npz") as tmp:
        np.savez(tmp, **data)
