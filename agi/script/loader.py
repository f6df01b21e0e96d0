"""Load `campaigns/scripts/<id>.yaml` into a validated `Script` (or a `HandlerRef`), errors as file:line: field."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from agi.script.model import VOICE_FIELDS, Node, Prompt, Retry, Script, VoiceParams
from agi.script.validate import validate
from common.paths import REPO
from common.yamlfile import ConfigError, Located, load_file, load_text

SCRIPTS_DIR = REPO / "campaigns" / "scripts"

_TOP = {"id", "lang", "locale", "start", "fallback", "timeout", "min_confidence", "instalments",
        "on_any", "on_any_verified", "on_cue", "prompts", "nodes", "description", "voice"}
_NODE = {"say", "listen", "dtmf", "goto", "verify", "max_attempts", "next", "end", "transfer", "record",
         "timeout", "no_input", "no_match", "note", "voice"}
_RETRY = {"retries", "say", "then"}
_LOCALES = {"zh": "zh-CN", "en": "en-US"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class HandlerRef:
    """A script file that names a built-in handler (`handler: dtmf_verify`) instead of a graph."""

    id: str
    handler: str
    file: str


class ScriptError(ConfigError):
    """Every problem found in one script file; `str()` lists them one per line."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.line, first.field, first.message)

    def render(self) -> str:
        return "\n".join(e.render() for e in getattr(self, "errors", [])) or super().render()


class _Reader:
    """Typed access to a Located document that collects errors instead of stopping at the first."""

    def __init__(self, loc: Located):
        self.loc = loc
        self.errors: list[ConfigError] = []

    def err(self, path: tuple[Any, ...], msg: str) -> None:
        self.errors.append(self.loc.error(path, msg))

    def mapping(self, value: Any, path: tuple[Any, ...], keys: set[str] | None = None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        if keys is not None:
            for k in value:
                if str(k) not in keys:
                    self.err(path + (k,), f"unknown field {k!r} (allowed: {', '.join(sorted(keys))})")
        return value

    def string(self, value: Any, path: tuple[Any, ...], required: bool = False) -> str | None:
        if value is None:
            if required:
                self.err(path, "required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.err(path, f"expected text, got {type(value).__name__}")
            return None
        return str(value)

    def number(self, value: Any, path: tuple[Any, ...], default: float, minimum: float = 0) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            self.err(path, f"expected a number >= {minimum:g}")
            return default
        return float(value)

    def names(self, value: Any, path: tuple[Any, ...]) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.err(path, "expected a list")
            return ()
        out = []
        for i, v in enumerate(value):
            s = self.string(v, path + (i,))
            if s is not None:
                out.append(s)
        return tuple(out)

    def table(self, value: Any, path: tuple[Any, ...]) -> dict[str, str]:
        out = {}
        for k, v in self.mapping(value, path).items():
            s = self.string(v, path + (k,))
            if s is not None:
                out[str(k)] = s
        return out


def _retry(r: _Reader, value: Any, path: tuple[Any, ...]) -> Retry:
    m = r.mapping(value, path, _RETRY)
    return Retry(retries=int(r.number(m.get("retries"), path + ("retries",), 2)),
                 say=r.names(m.get("say"), path + ("say",)),
                 then=r.string(m.get("then"), path + ("then",)))


def _voice(r: _Reader, value: Any, path: tuple[Any, ...], base: VoiceParams) -> VoiceParams:
    """`voice: {end_silence_ms: 1200, ...}` over `base` (the script's, or the defaults); typed and range-checked."""
    m = r.mapping(value, path, set(VOICE_FIELDS))
    changes: dict[str, Any] = {}
    for key, v in m.items():
        if key not in VOICE_FIELDS:
            continue
        default = getattr(base, key)
        if isinstance(default, bool):
            if not isinstance(v, bool):
                r.err(path + (key,), "expected true or false")
                continue
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            r.err(path + (key,), f"expected a number, got {v!r}")
            continue
        elif isinstance(default, int) and v != int(v):
            r.err(path + (key,), f"expected a whole number, got {v!r}")
            continue
        changes[key] = type(default)(v)
    voice = replace(base, **changes)
    for key, message in voice.problems():
        r.err(path + (key,) if key in m else path, f"{key}: {message}" if key not in m else message)
    return voice


def _node(r: _Reader, nid: str, value: Any, voice: VoiceParams | None = None) -> Node:
    path = ("nodes", nid)
    m = r.mapping(value, path, _NODE)
    listen = m.get("listen")
    return Node(
        id=nid,
        say=r.names(m.get("say"), path + ("say",)),
        listen=r.names(listen, path + ("listen",)) if "listen" in m else None,
        dtmf=r.table(m.get("dtmf"), path + ("dtmf",)),
        on=r.table(m.get("goto"), path + ("goto",)),
        verify=r.string(m.get("verify"), path + ("verify",)),
        max_attempts=int(r.number(m.get("max_attempts"), path + ("max_attempts",), 2, 1)),
        next=r.string(m.get("next"), path + ("next",)),
        end=r.string(m.get("end"), path + ("end",)),
        transfer=r.string(m.get("transfer"), path + ("transfer",)),
        record=r.string(m.get("record"), path + ("record",)),
        timeout=r.number(m.get("timeout"), path + ("timeout",), 0, 0.5) or None,
        no_input=_retry(r, m.get("no_input"), path + ("no_input",)),
        no_match=_retry(r, m.get("no_match"), path + ("no_match",)),
        voice=_voice(r, m.get("voice"), path + ("voice",), voice or VoiceParams()) if "voice" in m else None,
    )


def _prompt(r: _Reader, pid: str, value: Any) -> Prompt | None:
    path = ("prompts", pid)
    if isinstance(value, str):
        return Prompt(pid, value.strip())
    m = r.mapping(value, path, {"text", "must_finish"})
    text = r.string(m.get("text"), path + ("text",), required=True)
    must = m.get("must_finish", False)
    if not isinstance(must, bool):
        r.err(path + ("must_finish",), "expected true or false")
        must = False
    if not text or not text.strip():
        if text is not None:
            r.err(path + ("text",), "empty prompt")
        return None
    return Prompt(pid, text.strip(), must)


def _to_located_path(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """Engine field names -> the file's field names (`on` is spelled `goto` in YAML)."""
    if len(path) >= 3 and path[0] == "nodes" and path[2] == "on":
        return path[:2] + ("goto",) + path[3:]
    return path


def parse(loc: Located, script_id: str | None = None) -> Script | HandlerRef:
    """A parsed YAML document -> a validated Script or HandlerRef; raises ScriptError listing every problem."""
    r = _Reader(loc)
    sid = script_id or Path(loc.file).stem
    top = r.mapping(loc.data, ())
    if not top and not r.errors:
        r.err((), "empty script file")
    if "handler" in top:
        extra = [k for k in top if k not in ("handler", "id", "description", "lang", "locale")]
        for k in extra:
            r.err((k,), "a handler script names only `handler` (and optionally id, description, lang, locale)")
        name = r.string(top.get("handler"), ("handler",), required=True)
        if name is not None and not _NAME.match(name):
            r.err(("handler",), f"not a handler name {name!r}")
        if r.errors:
            raise ScriptError(r.errors)
        return HandlerRef(sid, name or "", loc.file)
    r.mapping(top, (), _TOP)
    if "id" in top and str(top["id"]) != sid:
        r.err(("id",), f"id {top['id']!r} does not match the file name {sid!r}")
    lang = r.string(top.get("lang"), ("lang",), required=True) or "zh"
    if lang not in _LOCALES:
        r.err(("lang",), f"unknown lang {lang!r} (zh or en)")
    locale = r.string(top.get("locale"), ("locale",)) or _LOCALES.get(lang, "zh-CN")
    prompts = {}
    for pid, value in r.mapping(top.get("prompts"), ("prompts",)).items():
        p = _prompt(r, str(pid), value)
        if p:
            prompts[str(pid)] = p
    if not prompts:
        r.err(("prompts",), "required: at least one prompt")
    voice = _voice(r, top.get("voice"), ("voice",), VoiceParams())
    nodes = {str(nid): _node(r, str(nid), v, voice)
             for nid, v in r.mapping(top.get("nodes"), ("nodes",)).items()}
    if not nodes:
        r.err(("nodes",), "required: at least one node")
    if r.errors:
        raise ScriptError(r.errors)
    script = Script(
        id=sid, lang=lang, locale=locale,
        start=r.string(top.get("start"), ("start",), required=True) or "",
        fallback=r.string(top.get("fallback"), ("fallback",), required=True) or "",
        prompts=prompts, nodes=nodes,
        on_any=r.table(top.get("on_any"), ("on_any",)),
        on_any_verified=r.table(top.get("on_any_verified"), ("on_any_verified",)),
        on_cue=r.table(top.get("on_cue"), ("on_cue",)),
        timeout=r.number(top.get("timeout"), ("timeout",), 6.0, 0.5),
        min_confidence=r.number(top.get("min_confidence"), ("min_confidence",), 0.0),
        instalments=int(r.number(top.get("instalments"), ("instalments",), 3, 1)),
        voice=voice,
        file=loc.file,
    )
    for problem in validate(script):
        r.err(_to_located_path(problem.path), problem.message)
    if r.errors:
        raise ScriptError(r.errors)
    return script


def load_script(path: str | Path) -> Script | HandlerRef:
    """Load one script file; its id is the file name without `.yaml`."""
    return parse(load_file(path), Path(path).stem)


def load_script_text(text: str, file: str = "<input>.yaml") -> Script | HandlerRef:
    return parse(load_text(text, file), Path(file).stem)


def script_path(script_id: str, directory: str | Path | None = None) -> Path:
    return Path(directory or SCRIPTS_DIR) / f"{script_id}.yaml"


def load_by_id(script_id: str, directory: str | Path | None = None) -> Script | HandlerRef:
    """`m1_reminder` -> campaigns/scripts/m1_reminder.yaml, loaded and validated."""
    if not _NAME.match(script_id):
        raise ConfigError(None, None, "script", f"not a script id {script_id!r}")
    return load_script(script_path(script_id, directory))


def load_all(directory: str | Path | None = None) -> dict[str, Script | HandlerRef]:
    """Every `*.yaml` in the scripts folder; raises on the first bad file (all its problems listed)."""
    out = {}
    for path in sorted(Path(directory or SCRIPTS_DIR).glob("*.yaml")):
        out[path.stem] = load_script(path)
    return out


def script_ids(directory: str | Path | None = None) -> Iterable[str]:
    return sorted(p.stem for p in Path(directory or SCRIPTS_DIR).glob("*.yaml"))
