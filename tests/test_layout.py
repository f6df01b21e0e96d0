"""The tree keeps docs/LAYOUT.md's rules, and the checker catches each kind of violation when planted."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.layout_rules import PACKAGES, check_tree

REPO = Path(__file__).resolve().parents[1]


def test_the_repository_keeps_the_layout_rules() -> None:
    violations = check_tree(REPO)
    assert not violations, "layout rules broken:\n" + "\n".join(map(str, violations))


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """An empty tree of the three packages to plant one module in."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
    return tmp_path


def plant(root: Path, rel: str, code: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code)


@pytest.mark.parametrize("rel, code, rule", [
    # an import inside a function counts as much as one at the top
    ("agi/planted.py", "def f():\n    from dialer.store import Store\n", "agi"),
    ("agi/script/planted.py", "import dialer.gate.decide\n", "agi"),
    ("common/planted.py", "from agi.intents import classify\n", "common"),
    ("dialer/gate/planted.py", "def f():\n    from dialer.calls import daemon\n", "layers"),
    ("dialer/store/planted.py", "from dialer.pacing.pacers import ProgressivePacer\n", "layers"),
    ("dialer/qa/planted.py", "from dialer import cli\n", "layers"),
    ("dialer/qa/planted.py", "Q = 'SELECT id FROM attempts WHERE x=?'\n", "sql"),
    ("dialer/calls/planted.py", "def f(c):\n    c.execute(\"UPDATE debtors SET status='x'\")\n", "sql"),
    ("dialer/gate/account.py", "import time\nfrom dialer.store import gate\n", None),  # not a pure module
    ("dialer/pacing/planted.py", "import asyncio\n", "pure"),
    ("dialer/calls/disposition.py", "from dialer.store import core\n", "pure"),
    ("agi/script/planted.py", "from datetime import date\n\ndef f():\n    return date.today()\n", "pure"),
    ("dialer/telephony/planted.py", "import asyncio\nfrom agi.server import FastAGIServer\n", None),
    ("dialer/gate/decide.py", "import time\n", "pure"),
])
def test_a_planted_violation_is_caught(tree: Path, rel: str, code: str, rule: str | None) -> None:
    plant(tree, rel, code)
    found = check_tree(tree)
    if rule is None:
        assert found == []
    else:
        assert [v.rule for v in found] == [rule], found
        assert found[0].path == rel


def test_agi_script_loader_may_read_files(tree: Path) -> None:
    """The loader is the one impure module of agi/script/: it reads YAML, which is allowed."""
    plant(tree, "agi/script/loader.py", "import time\n\ndef f():\n    return time.time()\n")
    assert check_tree(tree) == []
