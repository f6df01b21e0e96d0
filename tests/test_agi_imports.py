"""agi/ imports nothing of ours but agi/ and common/: every import statement, inside functions too."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = {"agi", "common", "dialer", "bench", "tests"}
ALLOWED = {"agi", "common"}


def foreign_imports(root: Path) -> list[str]:
    """`file:line: module` for every import under `root` of one of our packages outside ALLOWED."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in OURS and top not in ALLOWED:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {module}")
    return found


def test_agi_imports_only_agi_and_common():
    assert foreign_imports(REPO / "agi") == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    pkg = tmp_path / "agi"
    pkg.mkdir()
    (pkg / "leaky.py").write_text('"""Planted."""\nimport json\n\n\ndef f():\n    from dialer.store import core\n'
                                  '    import bench.tts\n    from common.log import log_event\n    return core\n')
    assert foreign_imports(pkg) == ["agi/leaky.py:6: dialer.store", "agi/leaky.py:7: bench.tts"]
