"""The lender REST API as an aiohttp sub-application: `api_app(store_factory)` is mounted at /api/ by the daemon's
one web server (which does the token auth) or by `dialer api serve` (`serve_app`, bearer auth of its own).

Requests are validated against `openapi.yaml` (served at /api/openapi.json) with jsonschema before anything runs:
a bad one gets 400 naming the field. Imports go through the same validation and all-or-nothing store functions as
the CLI; a bad row gets 422 with every problem by row and column. No handler writes outside one transaction.
"""
from __future__ import annotations

import copy
import hmac
import json
import logging
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable

import jsonschema
import yaml
from aiohttp import web

from common.log import log_event, mask_phone
from dialer.campaign.imports import (
    DEBTOR_COLUMNS,
    DEBTOR_REQUIRED,
    PAYMENT_COLUMNS,
    PAYMENT_REQUIRED,
    SUPPRESSION_COLUMNS,
    SUPPRESSION_REQUIRED,
    ImportRejected,
    read_debtors_csv,
    read_payments_csv,
    read_suppressions_csv,
    validate_debtor_records,
    validate_payment_records,
    validate_suppression_records,
)
from dialer.store import Store, core, lender
from dialer.store import outbox as ob
from dialer.store.payments import import_payments
from dialer.store.suppression import import_suppressions

log = logging.getLogger("dialer.api")
SPEC_FILE = Path(__file__).with_name("openapi.yaml")
STORE = web.AppKey("store", Store)
CLOCK = web.AppKey("clock", Callable)  # type: ignore[arg-type]
RULES_FILE = web.AppKey("rules_file", Path)
RULES = web.AppKey("rules", object)
MAX_BODY = 20 * 1024 * 1024


# -- the description and request validation ----------------------------------------------------------------

@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))


def _deref(node: Any, root: dict[str, Any]) -> Any:
    """The schema with every local $ref replaced by what it points to (OpenAPI 3.0 `nullable` → a type list)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _deref(target, root)
        out = {k: _deref(v, root) for k, v in node.items()}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_deref(x, root) for x in node]
    return node


@lru_cache(maxsize=1)
def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path template under /api) → the operation, $refs resolved."""
    s = spec()
    out = {}
    for path, item in s["paths"].items():
        for method, op in item.items():
            out[(method.upper(), path)] = _deref(copy.deepcopy(op), s)
    return out


class BadRequest(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


def _check(schema: dict[str, Any], value: Any, where: str) -> None:
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        path = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        if e.validator == "additionalProperties":
            extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
            path = f"{path}.{extra[0]}" if extra else path
            raise BadRequest(f"{path}: unknown field (allowed: {', '.join(e.schema.get('properties', {}))})", path)
        if e.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", e.message)
            path = f"{path}.{missing[0]}" if missing else path
            raise BadRequest(f"{path}: required", path)
        raise BadRequest(f"{path}: {e.message}", path)


def _no_nul(value: Any, where: str) -> None:
    """Text holds no NUL character: PostgreSQL cannot store one in a text column (SQLite would, and cut it
    short in most readers), so it is refused here the same on both engines."""
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest(f"{where}: contains a NUL character", where)
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_nul(k, where)
            _no_nul(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_nul(v, f"{where}[{i}]")


def _param_value(p: dict[str, Any], raw: str) -> Any:
    t = p["schema"].get("type")
    try:
        if t == "integer":
            if not re.fullmatch(r"[+-]?\d{1,18}", raw):
                raise ValueError
            return int(raw)
        if t == "number":
            v = float(raw)
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError
            return v
    except ValueError:
        raise BadRequest(f"{p['name']}: {raw[:40]!r} is not {'an integer' if t == 'integer' else 'a number'}",
                         p["name"]) from None
    return raw


async def validated(request: web.Request, template: str) -> dict[str, Any]:
    """Parameters and body of a request checked against its operation: {"path", "query", "body", "csv"}."""
    op = operations()[(request.method, template)]
    out: dict[str, Any] = {"path": {}, "query": {}, "body": None, "csv": None}
    for p in op.get("parameters", []):
        source = request.match_info if p["in"] == "path" else request.query
        if p["name"] not in source:
            if p.get("required"):
                raise BadRequest(f"{p['name']}: required {p['in']} parameter", p["name"])
            continue
        if p["in"] == "query" and len(request.query.getall(p["name"])) > 1:
            raise BadRequest(f"{p['name']}: given more than once", p["name"])
        value = _param_value(p, source[p["name"]])
        _check(p["schema"], value, p["name"])
        _no_nul(value, p["name"])
        out["path" if p["in"] == "path" else "query"][p["name"]] = value
    known = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    unknown = sorted(set(request.query) - known)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown query parameter"
                         + (f" (allowed: {', '.join(sorted(known))})" if known else ""), unknown[0])
    body = op.get("requestBody")
    if body is None:
        return out
    ctype = request.content_type
    if ctype not in body["content"]:
        raise BadRequest(f"Content-Type {ctype or '(none)'} not accepted here: send "
                         f"{' or '.join(body['content'])}", "Content-Type", 415)
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"body larger than {MAX_BODY} bytes: split the file", "body", 413)
    if ctype == "text/csv":
        try:
            out["csv"] = raw.decode(request.charset or "utf-8")
        except (UnicodeDecodeError, LookupError) as exc:
            raise BadRequest(f"body: not {request.charset or 'UTF-8'} text ({exc})", "body") from None
        _no_nul(out["csv"], "body")
        return out
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body: not JSON ({exc})", "body") from None
    if data is None and body.get("required"):
        raise BadRequest("body: required", "body")
    _check(body["content"][ctype]["schema"], data, "body")
    _no_nul(data, "body")
    out["body"] = data
    return out


# -- the application ---------------------------------------------------------------------------------------

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


def _error(message: str, status: int, field: str | None = None, **extra: Any) -> web.Response:
    return _json({"error": message, **({"field": field} if field else {}), **extra}, status)


def _rejected(exc: ImportRejected) -> web.Response:
    return _json({"error": str(exc), "errors": [{"row": e.row, "column": e.column, "message": e.message}
                                                 for e in exc.errors]}, 422)


def _records(args: dict[str, Any], columns: tuple[str, ...], required: tuple[str, ...]) -> list[dict[str, Any]]:
    """JSON rows as CSV-like records (spreadsheet numbering: the first row is row 2, as in a file)."""
    return [dict(r, __row__=str(i + 2)) for i, r in enumerate(args["body"]["rows"])]


def api_app(store_factory: Callable[[], Store], *, clock: Callable[[], float] = time.time,
            rules_file: Path = Path("compliance_rules.yaml")) -> web.Application:
    """The API as a sub-application (mount at /api/). `store_factory` opens the store at start-up; it is closed
    at clean-up. No auth here: the server it is mounted in checks the token. `rules_file`: the compliance rules
    complaints are taken under."""
    app = web.Application(client_max_size=MAX_BODY + 1024)
    app[CLOCK] = clock
    app[RULES_FILE] = Path(rules_file)

    async def open_store(app: web.Application) -> None:
        app[STORE] = store_factory()

    async def close_store(app: web.Application) -> None:
        app[STORE].close()

    app.on_startup.append(open_store)
    app.on_cleanup.append(close_store)

    def route(method: str, template: str, fn: Handler) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                args = await validated(request, template)
                return await fn(request, args)
            except BadRequest as exc:
                return _error(str(exc), exc.status, exc.field)
            except ImportRejected as exc:
                return _rejected(exc)
            except ValueError as exc:  # the store refused a value the description allows (said plainly, 400)
                return _error(str(exc), 400)
        app.router.add_route(method, template, handler)

    route("GET", "/openapi.json", lambda r, a: _openapi())
    route("POST", "/imports/debtors", _import_debtors)
    route("POST", "/imports/payments", _import_payments)
    route("POST", "/imports/suppressions", _import_suppressions)
    route("GET", "/debtors/{debtor_id}", _get_debtor)
    route("GET", "/debtors/{debtor_id}/history", _history)
    route("POST", "/debtors/{debtor_id}/holds", _add_hold)
    route("DELETE", "/debtors/{debtor_id}/holds/dispute", _release)
    route("GET", "/promises", _promises)
    route("GET", "/campaigns", _campaigns)
    route("GET", "/campaigns/{name}", _campaign)
    route("POST", "/campaigns/{name}/pause", _pause)
    route("POST", "/campaigns/{name}/resume", _resume)
    route("GET", "/webhooks/status", _webhooks)
    route("POST", "/complaints", _add_complaint)
    route("GET", "/complaints", _complaints)
    route("GET", "/complaints/{complaint_id}", _complaint)
    route("POST", "/complaints/{complaint_id}/review", _review_complaint)
    route("DELETE", "/complaints/{complaint_id}/hold", _release_complaint_hold)
    return app


async def _openapi() -> web.Response:
    return _json(spec())


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _now(request: web.Request) -> float:
    return float(request.app[CLOCK]())


async def _import_debtors(request: web.Request, args: dict[str, Any]) -> web.Response:
    store, name = _store(request), args["query"]["campaign"]
    camp = core.get_campaign(store, name)
    if camp is None:
        return _error(f"campaign: unknown campaign {name!r} (load it first: dialer campaign load FILE)", 404, "campaign")
    if args["csv"] is not None:
        rows = read_debtors_csv("request.csv", args["csv"], region=camp.default_region)
    else:
        rows = validate_debtor_records(_records(args, DEBTOR_COLUMNS, DEBTOR_REQUIRED), "request", camp.default_region)
    summary = core.import_debtors(store, rows, name, now=_now(request))
    log_event(log, "api.import.debtors", campaign=name, rows=summary["rows"])
    return _json({"ok": True, **summary})


async def _import_payments(request: web.Request, args: dict[str, Any]) -> web.Response:
    if args["csv"] is not None:
        rows = read_payments_csv("request.csv", args["csv"])
    else:
        rows = validate_payment_records(_records(args, PAYMENT_COLUMNS, PAYMENT_REQUIRED), "request")
    summary = import_payments(_store(request), rows, _now(request), actor="api")
    log_event(log, "api.import.payments", rows=len(rows))
    return _json({"ok": True, **summary})


async def _import_suppressions(request: web.Request, args: dict[str, Any]) -> web.Response:
    q = args["query"]
    if args["csv"] is not None:
        rows = read_suppressions_csv("request.csv", q["list"], args["csv"], source=q.get("source"))
    else:
        rows = validate_suppression_records(_records(args, SUPPRESSION_COLUMNS, SUPPRESSION_REQUIRED), q["list"],
                                            "request", source=q.get("source"))
    summary = import_suppressions(_store(request), rows, q["list"], _now(request), actor="api", file="api")
    return _json({"ok": True, **summary})


def _no_debtor(debtor_id: str) -> web.Response:
    return _error(f"debtor_id: no debtor {debtor_id!r}", 404, "debtor_id")


async def _get_debtor(request: web.Request, args: dict[str, Any]) -> web.Response:
    d = core.get_debtor(_store(request), args["path"]["debtor_id"])
    if d is None:
        return _no_debtor(args["path"]["debtor_id"])
    for p in d["phones"]:
        p["phone"] = mask_phone(p["phone"])
    for c in d["contacts"]:
        c["phone"] = mask_phone(c["phone"])
    d.pop("id_last4", None)   # verification factors never leave the dialer
    d.pop("birth_year", None)
    return _json(d)


async def _history(request: web.Request, args: dict[str, Any]) -> web.Response:
    debtor_id = args["path"]["debtor_id"]
    if not lender.debtor_exists(_store(request), debtor_id):
        return _no_debtor(debtor_id)
    return _json(lender.contact_history(_store(request), debtor_id))


async def _add_hold(request: web.Request, args: dict[str, Any]) -> web.Response:
    debtor_id, b = args["path"]["debtor_id"], args["body"]
    if not lender.debtor_exists(_store(request), debtor_id):
        return _no_debtor(debtor_id)
    hold = lender.add_hold(_store(request), debtor_id, b["kind"], b["source"], b.get("note"), _now(request))
    return _json(hold, 201)


async def _release(request: web.Request, args: dict[str, Any]) -> web.Response:
    debtor_id, q = args["path"]["debtor_id"], args["query"]
    try:
        entry = lender.release_dispute(_store(request), debtor_id, by=q["by"], reason=q["reason"], now=_now(request))
    except KeyError:
        return _error(f"debtor_id: no dispute hold for {debtor_id!r}", 404, "debtor_id")
    return _json({"ok": True, "released": entry})


async def _promises(request: web.Request, args: dict[str, Any]) -> web.Response:
    q = args["query"]
    return _json({"promises": lender.find_promises(_store(request), debtor_id=q.get("debtor_id"),
                                                   status=q.get("status"), since=q.get("since"),
                                                   limit=q.get("limit", 1000))})


async def _campaigns(request: web.Request, args: dict[str, Any]) -> web.Response:
    return _json({"campaigns": lender.campaign_states(_store(request), _now(request))})


def _one_campaign(request: web.Request, name: str) -> web.Response:
    rows = lender.campaign_states(_store(request), _now(request), name)
    if not rows:
        return _error(f"name: no campaign {name!r}", 404, "name")
    return _json(rows[0])


async def _campaign(request: web.Request, args: dict[str, Any]) -> web.Response:
    return _one_campaign(request, args["path"]["name"])


async def _set_status(request: web.Request, name: str, status: str) -> web.Response:
    try:
        core.set_campaign_status(_store(request), name, status, at=_now(request))
    except KeyError:
        return _error(f"name: no campaign {name!r}", 404, "name")
    log_event(log, "api.campaign." + status, campaign=name)
    return _one_campaign(request, name)


async def _pause(request: web.Request, args: dict[str, Any]) -> web.Response:
    return await _set_status(request, args["path"]["name"], "paused")


async def _resume(request: web.Request, args: dict[str, Any]) -> web.Response:
    return await _set_status(request, args["path"]["name"], "active")


async def _webhooks(request: web.Request, args: dict[str, Any]) -> web.Response:
    st = ob.status(_store(request), _now(request))
    return _json(st)


# -- standalone ---------------------------------------------------------------------------------------------


# -- complaints (docs/COMPLAINTS.md) -------------------------------------------------------------------------

def _masked(c: dict[str, Any]) -> dict[str, Any]:
    return c | {"phone": mask_phone(c["phone"]) if c.get("phone") else None}


def _rules(request: web.Request) -> Any:
    """The compliance rules (the profiles' complaints: settings), loaded once."""
    from dialer.gate.rules import load_rules

    app = request.app
    if RULES not in app:
        app[RULES] = load_rules(app[RULES_FILE])
    return app[RULES]


async def _add_complaint(request: web.Request, args: dict[str, Any]) -> web.Response:
    from dialer.qa.complaints import ComplaintError, parse_complaint, take_complaint
    from dialer.store.complaints import ComplaintStoreError

    try:
        c = parse_complaint(args["body"], now=_now(request))
    except ComplaintError as exc:
        return _error(f"body.{exc}", 400, f"body.{exc.field}")
    from common.yamlfile import ConfigError

    try:
        rules = _rules(request)
    except (ConfigError, OSError) as exc:  # the server's own file: said plainly, never blamed on the request
        log_event(log, "api.rules_unreadable", error=str(exc)[:200])
        return _error(f"the dialer cannot read its compliance rules: {exc}", 500)
    try:
        out = take_complaint(_store(request), c, rules, actor="api", now=_now(request))
    except ComplaintStoreError as exc:
        return _error(f"body.{exc}", exc.status, f"body.{exc.field}")
    log_event(log, "api.complaint", complaint=out["id"], category=c.category, calls=len(out["calls"]))
    return _json(_masked(out), 201)


async def _complaints(request: web.Request, args: dict[str, Any]) -> web.Response:
    from dialer.store.complaints import list_complaints

    q = args["query"]
    rows = list_complaints(_store(request), status=q.get("status"), debtor_id=q.get("debtor_id"),
                           since=q.get("since"), overdue_at=q.get("overdue_at"), limit=q.get("limit", 1000))
    return _json({"complaints": [_masked(c) for c in rows]})


async def _complaint(request: web.Request, args: dict[str, Any]) -> web.Response:
    from dialer.store.complaints import get_complaint

    cid = args["path"]["complaint_id"]
    c = get_complaint(_store(request), cid, evidence=True)
    if c is None:
        return _error(f"complaint_id: no complaint {cid}", 404, "complaint_id")
    return _json(_masked(c))


async def _review_complaint(request: web.Request, args: dict[str, Any]) -> web.Response:
    from dialer.qa.complaints import ComplaintError, parse_review
    from dialer.store.complaints import ComplaintStoreError, close_review

    body = dict(args["body"])
    by = body.pop("by")
    try:
        r = parse_review(body)
    except ComplaintError as exc:
        return _error(f"body.{exc}", 400, f"body.{exc.field}")
    cid = args["path"]["complaint_id"]
    try:
        out = close_review(_store(request), cid, r.finding, reviewer=by, call_id=r.call_id, rule=r.rule,
                           note=r.note, responsible=r.responsible, now=_now(request))
    except ComplaintStoreError as exc:
        where = "complaint_id" if exc.field == "complaint_id" else f"body.{exc.field}"
        return _error(str(exc) if where == "complaint_id" else f"body.{exc}", exc.status, where)
    log_event(log, "api.complaint.reviewed", complaint=cid, finding=r.finding)
    return _json(_masked(out))


async def _release_complaint_hold(request: web.Request, args: dict[str, Any]) -> web.Response:
    from dialer.store.complaints import ComplaintStoreError, release_hold

    cid, q = args["path"]["complaint_id"], args["query"]
    try:
        out = release_hold(_store(request), cid, by=q["by"], reason=q["reason"], now=_now(request))
    except ComplaintStoreError as exc:
        return _error(str(exc), exc.status, exc.field)
    log_event(log, "api.complaint.hold_released", complaint=cid)
    return _json(_masked(out))


def serve_app(store_factory: Callable[[], Store], token: str, **kw: Any) -> web.Application:
    """A root application with bearer-token auth and the API mounted at /api/ (what `dialer api serve` runs when
    no daemon web server is up). /api/openapi.json needs no token."""

    @web.middleware
    async def auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if request.path != "/api/openapi.json":
            given = request.headers.get("Authorization", "")
            if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode())):
                return _error("missing or wrong token: send Authorization: Bearer TOKEN", 401, "Authorization")
        return await handler(request)

    root = web.Application(middlewares=[auth], client_max_size=MAX_BODY + 1024)
    root.add_subapp("/api/", api_app(store_factory, **kw))
    return root
