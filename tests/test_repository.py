"""The repository is self-contained: a user's clone has no folder of ours beside it.

Every code path, test, suite, example, doc and shipped data file must work from the clone
alone, so none may name our machines' layout (the shared folder beside the clone, /work, a
home directory) or a document that is not in the repository.
"""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
             "geoprobe-results"}
BINARY = {".png", ".pdf", ".gz", ".npy", ".npz", ".safetensors", ".pt", ".whl"}
# an absolute path starts a token: at a line start, after a space, quote, bracket or '=';
# a placeholder such as "<cache>" followed by a folder name is not a machine path
_ABSOLUTE = r"(?:^|(?<=[\s\"'`(\[=]))"
FORBIDDEN = re.compile(r"\.\./shared\b|\bshared/(data|docs)\b|" + _ABSOLUTE +
                       r"/(work|root|home/\w+)/|\.pyenv\b|docs/anchors/", re.M)


def _text_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(folder) / name
            # a ".git" file (a worktree's pointer to its repository) is git's, not ours
            if path.suffix not in BINARY and name != ".git" and path != Path(__file__).resolve():
                yield path


def test_repository_has_files_to_scan():
    names = {p.relative_to(ROOT).as_posix() for p in _text_files()}
    assert {"README.md", "scripts/setup.sh", "datasets/treebank.py"} <= names


def test_no_file_names_our_machines_layout():
    offenders = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: "
                      f"{m.group(0)!r}" for m in FORBIDDEN.finditer(text)]
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_shipped_treebank_is_package_data():
    """The wheel carries EWT train and dev with the license (pyproject package-data)."""
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = cfg["tool"]["setuptools"]["package-data"]["geoprobe.datasets"]
    data = ROOT / "datasets"
    shipped = {p.name for pattern in patterns for p in data.glob(pattern)}
    assert {"en_ewt-ud-train.conllu.gz", "en_ewt-ud-dev.conllu.gz", "LICENSE.txt"} <= shipped


def test_ci_runs_the_readme_commands_verbatim():
    """The README's two commands are the first lines of its first code block, and .ci/run
    runs exactly those (on a fresh clone with a system-only PATH)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()[:2]]
    assert commands[0].startswith("bash scripts/setup.sh && ") and commands[0].endswith(" run")
    assert commands[1].startswith("bash scripts/setup.sh && ") and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in commands:
        assert f"bash -c '{command}'" in ci
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in ci


def test_ci_installs_chromium_before_the_tests():
    """The report's browser test skips where no Chromium is installed; CI must install it
    before it runs the tests, or that test would skip there unseen."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = ci.find("apt-get install -y -qq chromium")
    assert 0 <= install < ci.find(".venv/bin/python -m pytest")


def test_readme_suite_example_parses_and_its_check_override_works():
    """The README's example suite is valid, and `--set checks.ID.value=` reaches its check."""
    import tomllib

    from geoprobe.suite import build_suite

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    raw = tomllib.loads(readme.split("```toml\n", 1)[1].split("```", 1)[0])
    override = re.search(r"--set (checks\.[\w.-]+=\d+)", readme).group(1)
    suite = build_suite(raw, path=ROOT / "suite.toml", overrides=[override])
    assert [c.id for c in suite.checks] == ["spectrum-rankme-0", "spectrum-rankme-0-previous"]
    assert suite.checks[0].value == int(override.rsplit("=", 1)[1])


def test_readme_probe_example_passes_check_probe(tmp_path):
    """The "Writing a probe" example is real code: it passes the public harness."""
    from geoprobe.testing import check_probe

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Writing a probe", 1)[1].split("```python\n", 1)[1].split("```")[0]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # our own README, not user input
    check_probe(namespace["MeanNorm"], tmp_dir=tmp_path / "figures")
