"""The wallboard: one page (no build step: plain HTML and a little JavaScript) fed by server-sent events from
the daemon's floor view, the same view as JSON, and /metrics — routes for dialer/web/server.py:build_app."""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from dialer.observe.floor import FloorView
from dialer.observe.metrics import CONTENT_TYPE, Metrics

MIN_INTERVAL = 0.05  # seconds between two pushes to one browser (events in a burst are sent as one)
HEARTBEAT = 1.0  # a push at least this often (time in state moves on)


class Wallboard:
    """A bus subscriber that wakes the open event streams, and the handlers that serve them."""

    def __init__(self, floor: FloorView, metrics: Metrics | None = None):
        self.floor = floor
        self.metrics = metrics
        self._waiters: set[asyncio.Event] = set()
        self._seen = -1
        self.closing = False

    def __call__(self, event: Any) -> None:
        # subscribed after the floor view: wake the streams only when the floor moved (not on loop ticks,
        # AGI sessions …); the heartbeat keeps times in state fresh
        if self.floor.version == self._seen:
            return
        self._seen = self.floor.version
        for w in self._waiters:
            w.set()

    def routes(self) -> list[tuple[str, str, Any]]:
        out = [("GET", "/", self.page), ("GET", "/floor.json", self.json), ("GET", "/floor/events", self.events)]
        if self.metrics is not None:
            out.append(("GET", "/metrics", self.prometheus))
        out.append(("POST", "/supervise", self.supervise))
        out.append(("POST", "/dispo", self.dispo))
        return out

    async def on_shutdown(self, app: web.Application) -> None:
        self.closing = True
        for w in self._waiters:
            w.set()

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=page_html(), content_type="text/html", headers={"Cache-Control": "no-store"})

    async def json(self, request: web.Request) -> web.Response:
        return web.json_response(self.floor.snapshot())

    async def prometheus(self, request: web.Request) -> web.Response:
        assert self.metrics is not None
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def supervise(self, request: web.Request) -> web.Response:
        """A supervisor's button: {mode, collector, phone[, actor]} → ring the phone, ChanSpy on answer (audited)."""
        from dialer.observe.supervise import SuperviseError, supervise

        try:
            body = await request.json()
            mode, collector, phone = str(body["mode"]), str(body["collector"]), str(body["phone"]).strip()
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "send JSON {mode, collector, phone}"}, status=400)
        src = self.floor.source
        ami = getattr(src, "ami", None)
        if ami is None or not ami.connected.is_set():
            return web.json_response({"error": "the daemon has no AMI connection to its PBX now"}, status=503)
        if not phone:
            return web.json_response({"error": "give the supervisor's phone"}, status=400)
        actor = str(body.get("actor") or "wallboard")[:64]
        try:
            s = await supervise(ami, src.store, mode, collector, phone, actor=actor)
        except SuperviseError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response(s.__dict__)

    async def dispo(self, request: web.Request) -> web.Response:
        """A collector's (or supervisor's) disposition form: {collector, outcome[, amount, date, note]} → the daemon's
        `enter_disposition` (the same function as `dialer agent dispo`, at the daemon's clock). 400 with the reason
        when it is refused."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError
            collector, outcome = str(body["collector"]).strip(), str(body["outcome"]).strip()
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "send JSON {collector, outcome[, amount, date, note]}"}, status=400)
        if not collector:
            return web.json_response({"error": "choose the collector whose call this is"}, status=400)

        def opt(key: str) -> str | None:
            v = body.get(key)
            return None if v is None or str(v).strip() == "" else str(v).strip()

        note = opt("note")
        if note is not None and len(note) > 2000:
            return web.json_response({"error": "note: at most 2000 characters"}, status=400)
        enter = getattr(self.floor.source, "enter_disposition", None)
        if enter is None:
            return web.json_response({"error": "this server takes no dispositions (no dialer daemon)"}, status=503)
        try:
            out = enter(collector, outcome, amount=opt("amount"), date_text=opt("date"), note=note)
        except ValueError as exc:  # the CLI's words, with the form's field names for its options
            return web.json_response({"error": re.sub(r"--(amount|date|note)\b", r"\1", str(exc))}, status=400)
        return web.json_response(out)

    async def events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        wake = asyncio.Event()
        self._waiters.add(wake)
        loop = asyncio.get_running_loop()
        try:
            while not self.closing:
                wake.clear()
                snap = self.floor.snapshot()
                await resp.write(b"data: " + json.dumps(snap, separators=(",", ":")).encode() + b"\n\n")
                sent = loop.time()
                try:
                    await asyncio.wait_for(wake.wait(), HEARTBEAT)
                except asyncio.TimeoutError:
                    continue
                gap = MIN_INTERVAL - (loop.time() - sent)
                if gap > 0:
                    await asyncio.sleep(gap)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._waiters.discard(wake)
        return resp


def page_html() -> str:
    """The page, with the collectors' outcomes (common/vocab.py) in its disposition form."""
    from common import vocab

    options = "".join(f'<option value="{o}">{o.replace("_", " ")}</option>' for o in vocab.COLLECTOR_DISPOSITIONS)
    return PAGE.replace("<!--OUTCOMES-->", options)


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dialer floor</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#111;color:#eee}
 header{padding:8px 16px;background:#222;display:flex;gap:24px;align-items:baseline}
 h1{font-size:18px;margin:0} h2{font-size:16px;margin:16px 0 6px} main{padding:0 16px 16px}
 .camp{border:1px solid #333;border-radius:6px;padding:8px 12px;margin:12px 0}
 .tiles{display:flex;flex-wrap:wrap;gap:10px}
 .tile{background:#1c1c1c;border-radius:6px;padding:6px 10px;min-width:96px}
 .tile b{display:block;font-size:22px} .tile span{color:#aaa;font-size:12px}
 .bad b{color:#ff6b6b} .ok b{color:#7ddc7d}
 table{border-collapse:collapse} td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #2a2a2a}
 #status.off{color:#ff6b6b} .alert{color:#ffb347}
 #dispo label{margin-right:10px} #dispo-status.error{color:#ff6b6b} #dispo-status.done{color:#7ddc7d}
</style></head>
<body>
<header><h1>Dialer floor</h1><span id="clock">…</span><span id="status">connecting…</span></header>
<main>
 <div id="campaigns"></div>
 <h2>Collectors</h2>
 <p>Supervisor's phone <input id="phone" size="16" placeholder="sup1 or +1…"> <span id="sup-status"></span></p>
 <table id="collectors"><thead><tr><th>collector</th><th>state</th><th>time in state</th><th>call</th><th>monitor</th></tr></thead><tbody></tbody></table>
 <h2>Disposition</h2>
 <form id="dispo">
  <label>collector <select id="dispo-collector" name="collector" required><option value="">choose…</option></select></label>
  <label>outcome <select id="dispo-outcome" name="outcome" required><!--OUTCOMES--></select></label>
  <label>amount <input id="dispo-amount" name="amount" size="9" placeholder="promise: 250.00"></label>
  <label>date <input id="dispo-date" name="date" size="17" placeholder="2026-12-15 / 2026-12-15T14:30"></label>
  <label>note <input id="dispo-note" name="note" size="28" maxlength="2000"></label>
  <button id="dispo-send" type="submit">record</button>
  <span id="dispo-status" role="status"></span>
 </form>
 <h2>Compliance alerts</h2>
 <ul id="alerts"></ul>
</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
window.__updates = [];
function el(tag, attrs, text){const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e;}
function tile(id, label, value, cls){const t=el("div",{class:"tile "+(cls||"")});t.append(el("b",{id:id},String(value)),el("span",{},label));return t;}
function fmt(s){s=Math.round(s);return s<60? s+" s" : Math.floor(s/60)+" min "+(s%60)+" s";}
function counts(o){const e=Object.entries(o||{});return e.length? e.sort((a,b)=>b[1]-a[1]).map(([k,v])=>k+" "+v).join(", ") : "none";}
function render(s){
  document.getElementById("clock").textContent = s.clock;
  const box = document.getElementById("campaigns"); box.replaceChildren();
  for (const [name, c] of Object.entries(s.campaigns)) {
    const d = el("section",{class:"camp","data-campaign":name});
    d.append(el("h2",{},name+" — "+c.mode+" ("+c.in_use+" of "+c.line_limit+" lines)"));
    const t = el("div",{class:"tiles"});
    for (const [st,n] of Object.entries(c.lines)) t.append(tile("line-"+st+"-"+name, "lines "+st, n));
    t.append(tile("waiting-"+name,"calls waiting",c.waiting), tile("longest-"+name,"longest wait",fmt(c.longest_wait)));
    const ab=c.abandon, over=ab.rate>ab.limit;
    t.append(tile("abandon-"+name,"abandon rate (limit "+(ab.limit*100).toFixed(1)+" %)",(ab.rate*100).toFixed(2)+" %",over?"bad":"ok"),
             tile("budget-"+name,"abandons left in the "+ab.window.replaceAll("_"," "),ab.budget_left,ab.budget_left<1?"bad":"ok"));
    t.append(tile("placed-"+name,"placed",c.placed), tile("settled-"+name,"settled",c.settled),
             tile("contacts-"+name,"contacts",c.contacts), tile("rpc-"+name,"right-party contacts",c.rpc),
             tile("promises-"+name,"promises",c.promises));
    d.append(t);
    d.append(el("p",{id:"outcomes-"+name},"outcomes: "+counts(c.outcomes)));
    d.append(el("p",{id:"blocked-"+name},"gate blocks: "+counts(c.blocked)));
    box.append(d);
  }
  const tb = document.querySelector("#collectors tbody"); tb.replaceChildren();
  for (const c of s.collectors) { const r=el("tr",{"data-collector":c.name}); r.append(el("td",{},c.name),el("td",{},c.state+(c.leaving?" (leaving)":"")),el("td",{},fmt(c.seconds)),el("td",{},c.call||""));
    const m=el("td",{}); if (c.state==="talking") for (const mode of ["listen","whisper","barge"]) { const b=el("button",{"data-mode":mode},mode); b.onclick=()=>supervise(mode,c.name); m.append(b); }
    r.append(m); tb.append(r); }
  const sel = document.getElementById("dispo-collector"), have = [...sel.options].map(o => o.value);
  for (const c of s.collectors) if (!have.includes(c.name)) sel.append(el("option",{value:c.name},c.name));
  const al = document.getElementById("alerts"); al.replaceChildren();
  if (!s.alerts.length) al.append(el("li",{},"none"));
  for (const a of s.alerts) al.append(el("li",{class:"alert"},a.call_id+" ("+a.campaign+"): "+a.rules.join(", ")+(a.live?" — live":"")));
  document.body.dataset.version = s.version;
  window.__updates.push({version:s.version, event_wall:s.event_wall, wall:s.wall, shown:Date.now()/1000});
  if (window.__updates.length > 5000) window.__updates.splice(0, 1000);
}
const phone = document.getElementById("phone"); phone.value = localStorage.getItem("dialer.phone") || "";
phone.onchange = () => localStorage.setItem("dialer.phone", phone.value);
async function supervise(mode, collector){
  const st = document.getElementById("sup-status");
  if (!phone.value) { st.textContent = "give your phone first"; return; }
  const r = await fetch("supervise?token="+encodeURIComponent(token), {method:"POST", headers:{"Content-Type":"application/json"}, body: JSON.stringify({mode, collector, phone: phone.value})});
  const j = await r.json(); st.textContent = r.ok ? mode+" "+collector+": answered ("+j.session_id+")" : j.error;
}
document.getElementById("dispo").onsubmit = async (e) => {
  e.preventDefault();
  const st = document.getElementById("dispo-status"), f = e.target, body = {};
  for (const k of ["collector","outcome","amount","date","note"]) body[k] = f.elements[k].value;
  st.textContent = "…"; st.className = "";
  try {
    const r = await fetch("dispo?token="+encodeURIComponent(token), {method:"POST", headers:{"Content-Type":"application/json"}, body: JSON.stringify(body)});
    const j = await r.json();
    if (r.ok) { st.textContent = "recorded: "+j.agent+", call "+j.call_id+" ("+j.debtor_id+") → "+j.outcome+(j.date? " "+j.date : "")+(j.amount? " "+j.amount : "");
                st.className = "done"; f.elements.amount.value = f.elements.date.value = f.elements.note.value = ""; }
    else { st.textContent = "not recorded: "+j.error; st.className = "error"; }
  } catch (err) { st.textContent = "not recorded: "+err; st.className = "error"; }
};
const src = new EventSource("floor/events?token=" + encodeURIComponent(token));
src.onmessage = (m) => { const st=document.getElementById("status"); st.textContent="live"; st.className=""; render(JSON.parse(m.data)); };
src.onerror = () => { const st=document.getElementById("status"); st.textContent="disconnected — retrying"; st.className="off"; };
</script>
</body></html>
"""
