"""YAML loading that remembers where every value came from, so errors name file, line and field."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A problem in an operator's file: `file:line: field: message`."""

    def __init__(self, file: str | Path | None, line: int | None, field: str | None, message: str):
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


def field_path(path: tuple[Any, ...]) -> str:
    """('segments', 2, 'script') -> 'segments[2].script'"""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Located:
    """Parsed YAML data plus the line of every key path (1-based)."""

    data: Any
    file: str
    lines: dict[tuple[Any, ...], int]

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)

    def error(self, path: tuple[Any, ...], message: str) -> ConfigError:
        return ConfigError(self.file, self.line_of(path), field_path(path) or None, message)


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys_seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in keys_seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {keys_seen[key]})", key_node.start_mark
            )
        keys_seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = path + (key,)
            _walk(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines)


MAX_ALIASES = 100        # an operator's file has a few anchors; thousands are an attack
MAX_EXPANDED_NODES = 200_000  # what the document would be with every alias written out


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse "billion laughs": nested aliases whose expansion is exponential in the text's size."""
    sizes: dict[int, int] = {}
    aliases = 0
    seen: set[int] = set()

    def size(node: yaml.Node) -> int:
        nonlocal aliases
        key = id(node)
        if key in sizes:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(file, node.start_mark.line + 1, None,
                                  f"more than {MAX_ALIASES} alias references (*name); write the values out")
            return sizes[key]
        if key in seen:  # a recursive alias (an anchor used inside itself)
            raise ConfigError(file, node.start_mark.line + 1, None, "recursive alias")
        seen.add(key)
        n = 1
        if isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n += sum(size(item) for item in node.value)
        if n > MAX_EXPANDED_NODES:
            raise ConfigError(file, node.start_mark.line + 1, None,
                              f"aliases expand to more than {MAX_EXPANDED_NODES:,} values; write the values out")
        sizes[key] = n
        return n

    size(root)


def load_text(text: str, file: str = "<input>") -> Located:
    """Parse YAML text; syntax errors become ConfigError with the line."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
        if root is not None:
            _check_expansion(root, file)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(file, line, None, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, None, f"YAML error: {exc}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if root is not None:
        _walk(root, (), lines)
    return Located(data=data, file=file, lines=lines)


def load_file(path: str | Path) -> Located:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(p, None, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(p, None, None, f"not UTF-8 ({exc.reason})") from None
    return load_text(text, str(p))
