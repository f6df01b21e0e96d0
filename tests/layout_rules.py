"""The import rules of docs/LAYOUT.md as a checker over a source tree (used by tests/test_layout.py).

Every import is walked, including those inside functions. Rules:
- `common/` imports nothing of ours; `agi/` imports only `agi/` and `common/`;
- inside `dialer/`, layers point one way: `cli -> calls -> {campaign, gate, pacing, strategy, qa,
  telephony, reports} -> store`; nothing imports `cli`, only `cli` imports `calls`, and `store` imports no
  layer above it except the data types it maps rows to (STORE_TYPE_IMPORTS);
- no SQL string outside `dialer/store/`;
- pure modules import no store, no asyncio, no sqlite3, no clock and read no clock: time comes in
  as an argument.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

OURS = ("agi", "common", "dialer", "bench", "tests")
PACKAGES = ("agi", "common", "dialer")
MIDDLE = ("campaign", "gate", "pacing", "strategy", "qa", "telephony", "reports")

# The store maps rows to these typed objects (and back); it makes no decision with them.
STORE_TYPE_IMPORTS = {
    "dialer.campaign.config", "dialer.campaign.imports", "dialer.gate.decide", "dialer.gate.rules",
    "dialer.qa.checker",
}

# The observers (dialer/observe: the bus's subscribers) read the typed call events they are told of; they
# never drive a call.
OBSERVE_TYPE_IMPORTS = {"dialer.calls.events"}

PURE = (
    "dialer/gate/decide.py", "dialer/gate/zones.py", "dialer/pacing/", "dialer/qa/checker.py",
    "dialer/calls/disposition.py", "dialer/calls/retry.py", "agi/script/", "dialer/reports/figures.py",
    "dialer/campaign/escalation.py",
)
PURE_EXCEPT = ("agi/script/loader.py",)
IMPURE_MODULES = ("asyncio", "sqlite3", "time", "common.clock", "dialer.store", "sqlite_utils", "socket",
                  "subprocess")
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}

SQL = re.compile(r"\b(SELECT\s[\s\S]+?\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                 r"CREATE\s+(TABLE|INDEX|VIEW|TRIGGER)|PRAGMA\s+\w+|BEGIN\s+IMMEDIATE)\b")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.detail}"


def _module_of(rel: str) -> str:
    mod = rel[:-3].replace("/", ".")
    return mod[: -len(".__init__")] if mod.endswith(".__init__") else mod


def _imports(tree: ast.AST, module: str, is_pkg: bool) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            # `from dialer import store` imports dialer.store
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names if a.name != "*"]
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "dialer" or len(parts) < 2:
        return None
    return parts[1]


def _is_pure(rel: str) -> bool:
    return rel not in PURE_EXCEPT and any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in PURE)


def check_tree(root: Path) -> list[Violation]:
    """Every violation of the layout rules in the packages under `root`."""
    found: list[Violation] = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            module = _module_of(rel)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            found += _check_imports(rel, module, tree, path.name == "__init__.py")
            if not rel.startswith("dialer/store/"):
                found += _check_sql(rel, tree)
            if _is_pure(rel):
                found += _check_clock_calls(rel, tree)
    return found


def _check_imports(rel: str, module: str, tree: ast.AST, is_pkg: bool) -> list[Violation]:
    found: list[Violation] = []
    seen: set[tuple[int, str]] = set()  # `from a.b import c` is checked as a.b and a.b.c: report it once
    top = module.split(".")[0]
    layer = _layer(module)
    for line, name in _imports(tree, module, is_pkg):
        head = name.split(".")[0]
        ours = head in OURS

        def bad(rule: str, why: str) -> None:
            if (line, rule) not in seen:
                seen.add((line, rule))
                found.append(Violation(rel, line, rule, f"imports {name}: {why}"))

        if top == "common" and ours and head != "common":
            bad("common", "common/ imports nothing of ours")
        if top == "agi" and ours and head not in ("agi", "common"):
            bad("agi", "agi/ imports only agi/ and common/")
        if top in PACKAGES and head in ("tests", "bench"):
            bad("tests", "packages never import tests/ or bench/")
        if layer and head == "dialer":
            target = _layer(name)
            if target == "cli" and layer != "cli":
                bad("layers", "nothing imports the CLI")
            elif target == "calls" and layer not in ("cli", "calls"):
                if not (layer == "observe" and any(_under(name, t) for t in OBSERVE_TYPE_IMPORTS)):
                    bad("layers", "only cli/ drives calls/")
            elif layer == "store" and target in MIDDLE + ("calls", "cli"):
                if not any(_under(name, t) for t in STORE_TYPE_IMPORTS):
                    bad("layers", "store/ holds SQL and makes no decision: it imports no layer above it")
        if _is_pure(rel) and any(_under(name, m) for m in IMPURE_MODULES):
            bad("pure", "a pure module imports no store, no asyncio, no I/O and no clock")
    return found


def _check_sql(rel: str, tree: ast.AST) -> list[Violation]:
    found = []
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(Violation(rel, node.lineno, "sql", f"SQL outside dialer/store/: {node.value[:60]!r}"))
    return found


def _check_clock_calls(rel: str, tree: ast.AST) -> list[Violation]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if name in ("datetime", "date", "time"):
                found.append(Violation(rel, node.lineno, "pure", f"reads the clock: {name}.{node.func.attr}()"))
    return found
