/* unbounded trace viewer: a collapsible recursion tree, node details, a timeline of model calls,
 * the run's config, search, live updates, and a bench folder's table with side-by-side traces.
 * Plain JavaScript, no dependencies. Trace text is always inserted as text; the only HTML set
 * from data is the syntax highlighting the viewer's own server (Pygments) produced. */
(function () {
  "use strict";

  const CONFIG = JSON.parse(document.getElementById("ub-config").textContent);
  const dataEl = document.getElementById("ub-data");
  const DATA = dataEl ? JSON.parse(dataEl.textContent) : null;

  // ---------------------------------------------------------------- helpers
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "dataset") Object.assign(el.dataset, v);
        else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
        else if (k === "html") el.innerHTML = v; // only server-made highlighting
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const fmtInt = (n) => (typeof n === "number" ? Math.round(n).toLocaleString("en-US") : "?");
  function fmtCost(c) {
    if (c === null || c === undefined) return "cost ?";
    if (c === 0) return "$0";
    if (c < 0.0001) return "$" + c.toPrecision(2);
    return "$" + c.toFixed(4);
  }
  function fmtTime(s) {
    if (typeof s !== "number") return "";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 0) + " ms";
    if (s < 120) return s.toFixed(2) + " s";
    return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  }
  function fmtUsage(u) {
    // u = [calls, in, out, cached, cost|null, errors]
    if (!u) return "";
    const parts = [fmtInt(u[0]) + (u[0] === 1 ? " call" : " calls"), fmtInt(u[1]) + " in / " + fmtInt(u[2]) + " out", fmtCost(u[4])];
    if (u[5]) parts.push(u[5] + " failed");
    return parts.join(" · ");
  }
  const cut = (s, n) => (typeof s === "string" && s.length > n ? s.slice(0, n) + "…" : s);
  const str = (v) => (v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));
  const dataOf = (ev) => (ev && ev.data && typeof ev.data === "object" ? ev.data : {});

  const PRE_LIMIT = 20000;
  function pre(text, cls, limit) {
    text = str(text);
    limit = limit || PRE_LIMIT;
    const el = h("pre", { class: cls || null });
    if (text.length <= limit) {
      el.textContent = text;
      return el;
    }
    el.textContent = text.slice(0, limit);
    const wrap = h("div", null, el);
    const btn = h("button", { class: "showall", type: "button" }, `show all ${fmtInt(text.length)} characters`);
    btn.addEventListener("click", () => {
      el.textContent = text;
      btn.remove();
    });
    wrap.append(btn);
    return wrap;
  }
  function codeBlock(htmlText, plain) {
    if (typeof htmlText === "string") return h("pre", { class: "code hl", html: htmlText });
    return pre(plain, "code");
  }
  function kv(pairs) {
    const dl = h("dl", { class: "kv" });
    for (const [k, v, field] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(h("dt", null, k), h("dd", { dataset: field ? { f: field } : null }, v instanceof Node ? v : String(v)));
    }
    return dl;
  }
  function section(title, ...kids) {
    return h("section", null, title ? h("h3", null, title) : null, ...kids);
  }
  function raw(start, end) {
    const d = h("details", { class: "raw" }, h("summary", null, "raw events"));
    d.addEventListener("toggle", () => {
      if (d.open && d.children.length === 1) {
        d.append(pre(JSON.stringify(start, null, 2)));
        if (end) d.append(pre(JSON.stringify(end, null, 2)));
      }
    }, { once: true });
    return d;
  }

  // ---------------------------------------------------------------- data sources
  class ServerSource {
    constructor(base, tid) {
      this.base = base;
      this.tid = tid;
      this.live = true;
    }
    async get(path, params) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined) qs.set(k, v);
      const url = `${this.base}api/t/${this.tid}/${path}` + (qs.toString() ? "?" + qs : "");
      const r = await fetch(url, { cache: "no-store" });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      return body;
    }
  }

  class StaticSource {
    constructor(data) {
      this.d = data;
      this.live = false;
      this.texts = null;
    }
    async get(path, p) {
      const d = this.d;
      p = p || {};
      switch (path) {
        case "meta": return d.meta;
        case "timeline": return d.timeline;
        case "changes": return { version: d.meta.version, reset: false, nodes: [] };
        case "children": {
          const keys = d.children[p.key || ""] || [];
          const off = Number(p.offset || 0), lim = Number(p.limit || 200);
          return { key: p.key || null, total: keys.length, offset: off, items: keys.slice(off, off + lim).map((k) => d.nodes[k]), version: d.meta.version };
        }
        case "node": {
          const det = d.details[p.key];
          if (det) return det;
          if (!d.nodes[p.key]) throw new Error(`no node ${p.key}`);
          return { summary: d.nodes[p.key], start: null, end: null, missing: true };
        }
        case "reveal": {
          const path = [];
          let cur = d.nodes[p.key] && d.nodes[p.key].p;
          while (cur) { path.unshift(cur); cur = d.nodes[cur].p; }
          const chain = [...path, p.key];
          const positions = chain.map((k) => (d.children[d.nodes[k].p || ""] || []).indexOf(k));
          return { key: p.key, path, positions };
        }
        case "search": return this.search(String(p.q || ""), Number(p.limit || 200));
      }
      throw new Error("unknown request " + path);
    }
    search(q, limit) {
      q = q.trim();
      const needle = q.toLowerCase();
      const hits = [];
      let more = false;
      if (!needle) return { q, hits, more };
      for (const [key, det] of Object.entries(this.d.details)) {
        const found = findIn(det.start, needle, "") || findIn(det.end, needle, "");
        if (!found) continue;
        if (hits.length >= limit) { more = true; break; }
        const [field, text, pos] = found;
        const lo = Math.max(0, pos - 60);
        const snippet = (lo ? "…" : "") + text.slice(lo, pos + q.length + 60);
        hits.push({ k: key, t: this.d.nodes[key].t, field, snippet: snippet.replace(/\n/g, " ⏎ "), at: pos - lo + (lo ? 1 : 0) });
      }
      return { q, hits, more };
    }
  }
  function findIn(v, needle, path) {
    if (typeof v === "string") {
      const i = v.toLowerCase().indexOf(needle);
      return i >= 0 ? [path || "(value)", v, i] : null;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) { const f = findIn(v[i], needle, `${path}[${i}]`); if (f) return f; }
      return null;
    }
    if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (path === "" && (k === "parent" || k === "ts")) continue;
        const f = findIn(x, needle, path ? `${path}.${k}` : k);
        if (f) return f;
      }
      return null;
    }
    if (typeof v === "number") {
      const t = String(v);
      return t.includes(needle) ? [path, t, t.indexOf(needle)] : null;
    }
    return null;
  }

  // ---------------------------------------------------------------- row labels
  const KIND = {
    run_start: "run", rlm_start: "RLM", turn: "turn", lm_request: "model call", cell: "cell",
    subcall_start: "sub-call", warning: "warning", budget: "budget", check: "check", compaction: "compaction", pending: "cell",
  };
  function badge(text, cls) { return h("span", { class: "badge " + cls }, text); }
  function statusBadge(status) {
    if (!status) return null;
    const cls = status === "final" ? "ok" : status.startsWith("error") || status === "interrupted" ? "err" : "warn";
    return badge(status, cls);
  }
  function rowParts(s) {
    const b = s.b || {};
    let kind = KIND[s.t] || s.t;
    let text = "", code = false;
    const badges = [];
    switch (s.t) {
      case "run_start":
        text = b.q || "";
        badges.push(s.open ? badge("running", "fly") : statusBadge(b.status));
        break;
      case "rlm_start":
        kind = `RLM depth ${b.depth ?? "?"}`;
        text = b.q || "";
        badges.push(s.open ? badge("running", "fly") : statusBadge(b.status));
        if (typeof b.iterations === "number") badges.push(badge(`${b.iterations} turns`, "ok"));
        break;
      case "turn":
        kind = b.purpose === "forced_final" ? `turn ${b.n} (forced final)` : `turn ${b.n}`;
        text = b.code || b.reply || (b.cells ? "" : "(no code)");
        code = !!b.code;
        if (b.err) badges.push(badge("error", "err"));
        if (b.final !== undefined && b.final !== null) badges.push(badge("FINAL", "ok"));
        break;
      case "lm_request":
        text = `${b.model || "?"} (${b.purpose || "?"})` + (b.reply ? " → " + b.reply : "");
        if (s.open) badges.push(badge("in flight", "fly"));
        if (b.error) badges.push(badge("error", "err"));
        if (b.cached) badges.push(badge("cached", "ok"));
        break;
      case "cell":
        text = b.code || "";
        code = true;
        if (b.err) badges.push(badge("error", "err"));
        if (b.timed_out) badges.push(badge("timed out", "err"));
        if (b.state_lost) badges.push(badge("state lost", "err"));
        if (b.final !== undefined && b.final !== null) badges.push(badge("FINAL", "ok"));
        break;
      case "pending":
        kind = "cell";
        text = "running…";
        badges.push(badge("in flight", "fly"));
        break;
      case "subcall_start": {
        kind = b.kind || "sub-call";
        const sm = b.summary || {};
        if (b.kind === "llm_batch" || b.kind === "rlm_batch") text = `${sm.n ?? "?"} ${b.kind === "llm_batch" ? "prompts" : "questions"}`;
        else if (b.kind === "llm_query") text = `${fmtInt(sm.prompt_chars)} characters`;
        else if (b.kind === "rlm_query") text = sm.question || "";
        else if (b.kind === "tool") text = sm.name || "";
        else text = str(sm);
        if (sm.model) text += ` · ${sm.model}`;
        if (s.open) badges.push(badge("in flight", "fly"));
        else if (b.ok === false) badges.push(badge("failed", "err"));
        break;
      }
      case "warning": text = `${b.source ? b.source + ": " : ""}${b.msg || ""}`; break;
      case "budget": text = `${b.limit || ""} ${b.msg || ""}`; badges.push(badge("exhausted", "err")); break;
      case "check":
        text = `${b.verdict ?? ""} ${b.reason ?? ""}`;
        if (b.refused) badges.push(badge("refused", "err"));
        break;
      case "compaction": text = `${b.turns ?? "?"} turns · ${fmtInt(b.tokens_before)} → ${fmtInt(b.tokens_after)} tokens`; break;
      default:
        text = Object.entries(b).filter(([k]) => k !== "end").map(([k, v]) => `${k}=${str(v)}`).join(" ");
    }
    const metrics = [];
    if (s.u) metrics.push(fmtUsage(s.u));
    if (typeof s.dur === "number") metrics.push(fmtTime(s.dur));
    return { kind, text: cut(text, 200), code, badges: badges.filter(Boolean), metrics: metrics.join(" · ") };
  }

  // ---------------------------------------------------------------- trace viewer
  class TraceViewer {
    constructor(mount, source, opts) {
      this.mount = mount;
      this.src = source;
      this.opts = opts || {};
      this.rows = new Map(); // key -> {s, el, kids, expanded, loaded, total, more}
      this.version = 0;
      this.selected = null;
      this.detailToken = 0;
      this.timelineData = null;
      this.meta = null;
      this.polling = null;
      this.build();
    }

    build() {
      const title = this.opts.title || CONFIG.title || "trace";
      this.root = h("div", { class: "viewer" + (this.opts.compact ? " compact" : ""), "data-viewer": "1" });
      this.totalsEl = h("span", { class: "totals", "data-role": "totals" });
      this.liveEl = h("span", { class: "live", hidden: true });
      this.searchInput = h("input", { type: "search", placeholder: "Search the whole trace  ( / )", "aria-label": "Search the trace", "data-role": "search" });
      this.resultsEl = h("ul", { class: "results", role: "listbox", hidden: true, "data-role": "results" });
      const back = this.opts.back ? h("a", { href: this.opts.back.href }, "← " + this.opts.back.text) : null;
      const header = h("header", { class: "bar" }, back, h("h1", null, title), this.liveEl, this.totalsEl, h("span", { class: "spacer" }),
        h("div", { class: "search" }, this.searchInput, this.resultsEl));
      this.bannerEl = h("div", { class: "banner", hidden: true, "data-role": "banner" });
      const tabs = ["Tree", "Timeline", "Config"];
      this.tabButtons = tabs.map((t, i) => h("button", { role: "tab", type: "button", "aria-selected": i === 0 ? "true" : "false", "data-tab": t.toLowerCase(), onclick: () => this.showTab(t.toLowerCase()) }, t));
      const nav = h("nav", { class: "tabs", role: "tablist" }, this.tabButtons);
      this.treeEl = h("div", { role: "tree", "aria-label": "Trace tree", tabindex: "0", "data-role": "tree" });
      this.detailEl = h("div", { class: "detail", "aria-live": "polite", "data-role": "detail" }, h("p", { class: "empty" }, "Select a node to see it here."));
      this.panels = {
        tree: h("div", { class: "tabpanel panes", role: "tabpanel", "data-panel": "tree" },
          h("div", { class: "pane tree-pane" }, this.treeEl), h("div", { class: "pane detail-pane" }, this.detailEl)),
        timeline: h("div", { class: "tabpanel timeline", role: "tabpanel", hidden: true, "data-panel": "timeline" }),
        config: h("div", { class: "tabpanel config", role: "tabpanel", hidden: true, "data-panel": "config" }),
      };
      this.root.append(header, this.bannerEl, nav, ...Object.values(this.panels));
      this.mount.append(this.root);
      this.treeEl.addEventListener("keydown", (e) => this.onKey(e));
      this.treeEl.addEventListener("click", (e) => this.onClick(e));
      this.treeEl.addEventListener("focus", (e) => {
        if (e.target === this.treeEl) {
          const first = this.selected && this.rows.get(this.selected) ? this.rows.get(this.selected).el : this.treeEl.querySelector('[role="treeitem"]');
          if (first) first.focus();
        }
      });
      this.setupSearch();
    }

    async start() {
      try {
        this.meta = await this.src.get("meta");
      } catch (err) {
        this.detailEl.replaceChildren(h("p", { class: "empty" }, "Could not load the trace: " + err.message));
        return;
      }
      this.version = this.meta.version;
      this.renderMeta();
      await this.loadChildren(null, 0);
      // open the first run and its root RLM so the turns show at once
      const firstRun = [...this.rows.values()].find((r) => r.s.t === "run_start");
      if (firstRun) {
        await this.expand(firstRun.s.k);
        const rlm = firstRun.kidsKeys && firstRun.kidsKeys.find((k) => this.rows.get(k).s.t === "rlm_start");
        if (rlm) await this.expand(rlm);
        await this.select(firstRun.s.k, false);
      } else {
        const first = this.treeEl.querySelector('[role="treeitem"]');
        if (first) await this.select(first.dataset.key, false);
      }
      this.root.dataset.ready = "1";
      document.getElementById("app").setAttribute("aria-busy", "false");
      if (this.src.live) this.poll();
    }

    renderMeta() {
      const m = this.meta;
      const t = m.totals;
      const run = m.runs[m.runs.length - 1];
      const parts = [
        h("b", { "data-f": "calls" }, fmtInt(t[0])), " calls · ",
        h("b", { "data-f": "in" }, fmtInt(t[1])), " in / ", h("b", { "data-f": "out" }, fmtInt(t[2])), " out tokens · ",
        h("b", { "data-f": "cost" }, fmtCost(t[4])),
      ];
      if (run && typeof run.elapsed === "number") parts.push(" · ", h("b", { "data-f": "elapsed" }, fmtTime(run.elapsed)));
      if (m.runs_total > 1) parts.push(` · ${m.runs_total} runs`);
      this.totalsEl.replaceChildren(...parts);
      if (m.live) {
        this.liveEl.hidden = false;
        this.liveEl.className = "live";
        this.liveEl.textContent = m.calls_in_flight ? `live · ${m.calls_in_flight} calls in flight` : "live";
      } else if (this.src.live && this.liveEl.textContent) {
        this.liveEl.className = "live done";
        this.liveEl.textContent = "finished";
      }
      const notes = [];
      if (DATA && DATA.capped && this.src instanceof StaticSource) notes.push(`This file embeds the full text of the first nodes only (up to ${fmtInt(DATA.max_bytes)} bytes); the rest show their rows and usage. Open the trace with \`unbounded view\` to see everything.`);
      if (m.bad_lines) notes.push(`${m.bad_lines} line(s) of the file are not JSON events and were skipped.`);
      this.bannerEl.hidden = !notes.length;
      this.bannerEl.textContent = notes.join(" ");
      if (!this.panels.config.hidden) this.renderConfig();
    }

    // -- tree rows ------------------------------------------------------------------------
    makeRow(s, level) {
      const el = h("div", { role: "treeitem", tabindex: "-1", "aria-level": level, "aria-selected": "false", dataset: { key: s.k, type: s.t } });
      el.style.setProperty("--level", level - 1);
      const row = h("div", { class: "row" });
      el.append(row);
      const state = { s, el, row, level, kids: null, kidsKeys: null, expanded: false, loaded: 0, total: s.n, moreEl: null };
      this.rows.set(s.k, state);
      this.paintRow(state);
      return state;
    }
    paintRow(st) {
      const s = st.s;
      const p = rowParts(s);
      const twisty = h("span", { class: "twisty", "aria-hidden": "true" }, s.n ? (st.expanded ? "▾" : "▸") : "");
      st.row.replaceChildren(twisty, h("span", { class: "kind " + s.t }, p.kind), h("span", { class: "text" + (p.code ? " code" : ""), title: p.text }, p.text), ...p.badges, h("span", { class: "metrics" }, p.metrics));
      if (s.n) st.el.setAttribute("aria-expanded", st.expanded ? "true" : "false");
      else st.el.removeAttribute("aria-expanded");
      st.el.dataset.type = s.t;
    }
    async loadChildren(key, offset) {
      const res = await this.src.get("children", { key: key || "", offset, limit: 200 });
      const parent = key ? this.rows.get(key) : null;
      const container = parent ? this.ensureGroup(parent) : this.treeEl;
      const level = parent ? parent.level + 1 : 1;
      const list = parent ? (parent.kidsKeys = parent.kidsKeys || []) : (this.rootKeys = this.rootKeys || []);
      const moreEl = parent ? parent.moreEl : this.rootMore;
      if (moreEl) moreEl.remove();
      for (const s of res.items) {
        if (this.rows.has(s.k)) continue;
        const st = this.makeRow(s, level);
        container.append(st.el);
        list.push(s.k);
      }
      const loaded = offset + res.items.length;
      if (parent) { parent.loaded = loaded; parent.total = res.total; }
      else { this.rootLoaded = loaded; this.rootTotal = res.total; }
      if (res.total > loaded) {
        const more = h("div", { role: "treeitem", tabindex: "-1", class: "more", "aria-level": level, dataset: { more: key || "", offset: loaded } });
        more.style.setProperty("--level", level - 1);
        more.append(h("div", { class: "row" }, h("span", { class: "twisty" }), `show ${Math.min(200, res.total - loaded)} more of ${fmtInt(res.total - loaded)}…`));
        container.append(more);
        if (parent) parent.moreEl = more; else this.rootMore = more;
      } else if (parent) parent.moreEl = null;
      else this.rootMore = null;
    }
    ensureGroup(st) {
      if (!st.kids) {
        st.kids = h("div", { role: "group" });
        st.el.append(st.kids);
      }
      return st.kids;
    }
    async expand(key) {
      const st = this.rows.get(key);
      if (!st || !st.s.n) return;
      st.expanded = true;
      if (st.kids) st.kids.hidden = false;
      this.paintRow(st);
      if (!st.loaded) await this.loadChildren(key, 0);
    }
    collapse(key) {
      const st = this.rows.get(key);
      if (!st) return;
      st.expanded = false;
      if (st.kids) st.kids.hidden = true;
      this.paintRow(st);
    }
    toggle(key) {
      const st = this.rows.get(key);
      if (st && st.expanded) this.collapse(key);
      else this.expand(key);
    }
    visibleItems() {
      return [...this.treeEl.querySelectorAll('[role="treeitem"]')].filter((el) => !el.closest('[role="group"][hidden]'));
    }
    focusEl(el) {
      if (!el) return;
      for (const x of this.treeEl.querySelectorAll('[role="treeitem"][tabindex="0"]')) x.tabIndex = -1;
      el.tabIndex = 0;
      el.focus({ preventScroll: true });
      el.scrollIntoView({ block: "nearest" });
      if (el.dataset.key) this.select(el.dataset.key, false);
    }
    onClick(e) {
      const item = e.target.closest('[role="treeitem"]');
      if (!item) return;
      e.stopPropagation();
      if (item.dataset.more !== undefined) return this.loadMore(item);
      const key = item.dataset.key;
      if (e.target.classList.contains("twisty") || e.detail === 2) this.toggle(key);
      if (this.selected !== key || document.activeElement !== item) this.focusEl(item);
    }
    async loadMore(item) {
      const key = item.dataset.more || null;
      const idx = this.visibleItems().indexOf(item);
      await this.loadChildren(key, Number(item.dataset.offset));
      const items = this.visibleItems();
      if (items[idx]) this.focusEl(items[idx]);
    }
    onKey(e) {
      const item = e.target.closest && e.target.closest('[role="treeitem"]');
      if (!item) return;
      const items = this.visibleItems();
      const i = items.indexOf(item);
      const key = item.dataset.key;
      const st = key ? this.rows.get(key) : null;
      let handled = true;
      switch (e.key) {
        case "ArrowDown": this.focusEl(items[Math.min(items.length - 1, i + 1)]); break;
        case "ArrowUp": this.focusEl(items[Math.max(0, i - 1)]); break;
        case "Home": this.focusEl(items[0]); break;
        case "End": this.focusEl(items[items.length - 1]); break;
        case "ArrowRight":
          if (st && st.s.n && !st.expanded) this.expand(key);
          else if (st && st.expanded) this.focusEl(items[i + 1]);
          break;
        case "ArrowLeft":
          if (st && st.expanded) this.collapse(key);
          else {
            const up = item.parentElement.closest('[role="treeitem"]');
            if (up) this.focusEl(up);
          }
          break;
        case "Enter":
        case " ":
          if (item.dataset.more !== undefined) this.loadMore(item);
          else if (st && st.s.n) this.toggle(key);
          break;
        case "*": // expand all siblings
          for (const sib of item.parentElement.children) if (sib.dataset.key) this.expand(sib.dataset.key);
          break;
        default: handled = false;
      }
      if (handled) e.preventDefault();
    }

    // -- selection & details ---------------------------------------------------------------
    select(key, focus) {
      if (this.selected && this.rows.get(this.selected)) this.rows.get(this.selected).el.setAttribute("aria-selected", "false");
      this.selected = key;
      const st = this.rows.get(key);
      if (st) {
        st.el.setAttribute("aria-selected", "true");
        if (focus) this.focusEl(st.el);
      }
      return this.showDetail(key);
    }
    async showDetail(key) {
      const token = ++this.detailToken;
      let d;
      try {
        d = await this.src.get("node", { key });
      } catch (err) {
        if (token === this.detailToken) this.detailEl.replaceChildren(h("p", { class: "empty" }, err.message));
        return;
      }
      if (token !== this.detailToken) return;
      const body = await this.renderDetail(d);
      if (token !== this.detailToken) return;
      this.detailEl.replaceChildren(body);
      this.detailEl.dataset.key = key;
    }
    async renderDetail(d) {
      const s = d.summary;
      const p = rowParts(s);
      const box = h("div", { dataset: { node: s.k, type: s.t } });
      box.append(h("h2", null, h("span", { class: "kind " + s.t }, p.kind), " ", ...p.badges));
      if (d.missing) box.append(h("p", { class: "note warn" }, "The text of this node is not embedded in this file (it was over the size cap)."));
      const r = RENDER[s.t] || RENDER.default;
      await r.call(this, box, d);
      if (s.u) box.append(section("usage (this node and below)", usageRow(s.u, s.dur)));
      if (d.start) box.append(raw(d.start, d.end));
      return box;
    }

    // -- live ----------------------------------------------------------------------------
    poll() {
      const every = CONFIG.poll_ms || 500;
      const tick = async () => {
        try {
          const ch = await this.src.get("changes", { since: this.version });
          if (ch.reset) await this.reload();
          else if (ch.nodes.length) await this.apply(ch);
          this.version = ch.version;
        } catch (err) {
          this.liveEl.hidden = false;
          this.liveEl.className = "live";
          this.liveEl.textContent = "disconnected";
        }
        this.polling = setTimeout(tick, every);
      };
      this.polling = setTimeout(tick, every);
    }
    async reload() {
      const expanded = [...this.rows.values()].filter((r) => r.expanded).map((r) => r.s.k);
      const selected = this.selected;
      this.rows.clear();
      this.rootKeys = [];
      this.rootMore = null;
      this.treeEl.replaceChildren();
      this.meta = await this.src.get("meta");
      this.version = this.meta.version;
      this.renderMeta();
      await this.loadChildren(null, 0);
      for (const k of expanded) if (this.rows.has(k)) await this.expand(k);
      if (selected && this.rows.has(selected)) this.select(selected, false);
      this.timelineData = null;
      if (!this.panels.timeline.hidden) this.renderTimeline();
    }
    async apply(ch) {
      for (const s of ch.nodes) {
        const st = this.rows.get(s.k);
        if (st) {
          const moved = (st.s.p || null) !== (s.p || null);
          st.s = s;
          if (moved) {
            this.removeRow(st);
            this.insertNew(s);
          } else {
            st.total = s.n;
            this.paintRow(st);
            if (st.expanded && s.n > st.loaded && !st.moreEl) await this.loadChildren(s.k, st.loaded);
          }
        } else this.insertNew(s);
      }
      this.meta = await this.src.get("meta");
      this.renderMeta();
      if (this.selected && ch.nodes.some((s) => s.k === this.selected)) this.showDetail(this.selected);
      this.timelineData = null;
      if (!this.panels.timeline.hidden) this.renderTimeline();
    }
    insertNew(s) {
      if (this.rows.has(s.k)) return;
      const parent = s.p ? this.rows.get(s.p) : null;
      if (s.p && (!parent || !parent.kidsKeys)) return; // its parent is collapsed or not shown: fetched when opened
      const list = parent ? parent.kidsKeys : this.rootKeys;
      const loaded = parent ? parent.loaded : this.rootLoaded;
      const total = parent ? parent.total : this.rootTotal;
      if (parent && loaded < (total || 0) && parent.moreEl) return; // beyond the loaded page
      const container = parent ? this.ensureGroup(parent) : this.treeEl;
      const st = this.makeRow(s, parent ? parent.level + 1 : 1);
      container.append(st.el);
      list.push(s.k);
      if (parent) { parent.loaded += 1; parent.total = Math.max(parent.total, parent.loaded); }
      else { this.rootLoaded += 1; this.rootTotal = Math.max(this.rootTotal, this.rootLoaded); }
    }
    removeRow(st) {
      st.el.remove();
      for (const r of this.rows.values()) {
        if (r.kidsKeys) {
          const i = r.kidsKeys.indexOf(st.s.k);
          if (i >= 0) { r.kidsKeys.splice(i, 1); r.loaded -= 1; }
        }
      }
      const j = (this.rootKeys || []).indexOf(st.s.k);
      if (j >= 0) { this.rootKeys.splice(j, 1); this.rootLoaded -= 1; }
      const dropTree = (k) => {
        const r = this.rows.get(k);
        if (!r) return;
        this.rows.delete(k);
        for (const c of r.kidsKeys || []) dropTree(c);
      };
      dropTree(st.s.k);
    }

    // -- reveal & search ---------------------------------------------------------------------
    async reveal(key) {
      const r = await this.src.get("reveal", { key });
      const chain = [...r.path, key];
      for (let i = 0; i < chain.length; i++) {
        const k = chain[i];
        const parentKey = i === 0 ? null : chain[i - 1];
        if (parentKey) await this.expand(parentKey);
        // page until the row is loaded
        let guard = 0;
        while (!this.rows.has(k) && guard++ < 1000) {
          const p = parentKey ? this.rows.get(parentKey) : null;
          const loaded = p ? p.loaded : this.rootLoaded;
          const total = p ? p.total : this.rootTotal;
          if (loaded >= total) break;
          await this.loadChildren(parentKey, loaded);
        }
      }
      this.showTab("tree");
      const st = this.rows.get(key);
      if (st) {
        this.focusEl(st.el);
        st.el.scrollIntoView({ block: "center" });
      }
    }
    setupSearch() {
      const input = this.searchInput, list = this.resultsEl;
      let timer = null, active = -1, token = 0;
      const close = () => { list.hidden = true; active = -1; };
      const run = async () => {
        const q = input.value.trim();
        const my = ++token;
        if (!q) return close();
        const res = await this.src.get("search", { q, limit: 200 });
        if (my !== token) return;
        list.replaceChildren();
        if (!res.hits.length) list.append(h("li", { class: "none" }, "no match"));
        res.hits.forEach((hit, i) => {
          const snip = hit.snippet;
          const li = h("li", { role: "option", "aria-selected": "false", dataset: { key: hit.k, i } },
            h("span", { class: "kind " + hit.t }, KIND[hit.t] || hit.t), " ", h("span", { class: "field" }, hit.field), h("br"),
            snip.slice(0, hit.at), h("mark", null, snip.slice(hit.at, hit.at + q.length)), snip.slice(hit.at + q.length));
          li.addEventListener("mousedown", (e) => { e.preventDefault(); close(); this.reveal(hit.k); });
          list.append(li);
        });
        if (res.more) list.append(h("li", { class: "none" }, "more matches: refine the search"));
        list.hidden = false;
        list.dataset.count = res.hits.length;
      };
      input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 180); });
      input.addEventListener("keydown", async (e) => {
        const opts = [...list.querySelectorAll('[role="option"]')];
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          if (list.hidden) await run();
          if (!opts.length) return;
          active = e.key === "ArrowDown" ? Math.min(opts.length - 1, active + 1) : Math.max(0, active - 1);
          opts.forEach((o, i) => o.setAttribute("aria-selected", i === active ? "true" : "false"));
          opts[active].scrollIntoView({ block: "nearest" });
        } else if (e.key === "Enter") {
          e.preventDefault();
          clearTimeout(timer);
          if (list.hidden || !opts.length) await run();
          const all = [...list.querySelectorAll('[role="option"]')];
          const pick = all[Math.max(0, active)];
          if (pick) { close(); this.reveal(pick.dataset.key); }
        } else if (e.key === "Escape") {
          close();
          const st = this.selected && this.rows.get(this.selected);
          if (st) st.el.focus(); else this.treeEl.focus();
        }
      });
      input.addEventListener("blur", () => setTimeout(close, 150));
      this.root.addEventListener("keydown", (e) => {
        if (e.key === "/" && e.target !== input && !/^(INPUT|TEXTAREA)$/.test(e.target.tagName)) {
          e.preventDefault();
          input.focus();
          input.select();
        }
      });
    }

    // -- tabs --------------------------------------------------------------------------------
    showTab(name) {
      for (const b of this.tabButtons) b.setAttribute("aria-selected", b.dataset.tab === name ? "true" : "false");
      for (const [k, p] of Object.entries(this.panels)) p.hidden = k !== name;
      if (name === "timeline") this.renderTimeline();
      if (name === "config") this.renderConfig();
    }
    renderConfig() {
      const panel = this.panels.config;
      const m = this.meta;
      panel.replaceChildren();
      if (!m || !m.runs.length) { panel.append(h("p", { class: "empty" }, "No run in this trace.")); return; }
      if (m.runs_total > m.runs.length) panel.append(h("p", { class: "note" }, `showing the last ${m.runs.length} of ${m.runs_total} runs`));
      for (const run of m.runs) panel.append(runBox(run));
    }
    async renderTimeline() {
      const panel = this.panels.timeline;
      if (!this.timelineData) this.timelineData = await this.src.get("timeline");
      const tl = this.timelineData;
      drawTimeline(panel, tl, (key) => this.reveal(key));
    }
  }

  function usageRow(u, dur) {
    return kv([
      ["model calls", fmtInt(u[0]), "calls"],
      ["input tokens", fmtInt(u[1]), "in"],
      ["output tokens", fmtInt(u[2]), "out"],
      ["cached input tokens", u[3] ? fmtInt(u[3]) : null, "cached"],
      ["cost", fmtCost(u[4]), "cost"],
      ["failed calls", u[5] ? String(u[5]) : null, "failed"],
      ["time", typeof dur === "number" ? fmtTime(dur) : null, "time"],
    ]);
  }
  function usageTable(byModel) {
    const t = h("table", { class: "usage", "data-role": "usage-table" }, h("tr", null, h("th", null, "model"), h("th", null, "calls"), h("th", null, "input"), h("th", null, "output"), h("th", null, "cached"), h("th", null, "cost")));
    for (const [model, u] of Object.entries(byModel || {})) {
      t.append(h("tr", { dataset: { model } }, h("td", null, model), h("td", null, fmtInt(u.calls)), h("td", null, fmtInt(u.input_tokens)), h("td", null, fmtInt(u.output_tokens)), h("td", null, fmtInt(u.cached_input_tokens)), h("td", null, fmtCost(u.cost_usd))));
    }
    return t;
  }
  function runBox(run) {
    const c = run.config || {};
    const ctx = run.context || {};
    const b = c.budget || {};
    const lim = c.limits || {};
    const box = h("div", { class: "run", dataset: { run: run.key } });
    box.append(h("h3", null, "run " + run.key));
    box.append(kv([
      ["question", run.question],
      ["status", run.open ? "running" : run.status, "status"],
      ["answer", run.answer],
      ["error", run.error],
      ["turns", run.iterations],
      ["elapsed", typeof run.elapsed === "number" ? fmtTime(run.elapsed) : null],
      ["trace schema", run.schema],
    ]));
    box.append(section("models", kv([
      ["root model", c.model, "model"], ["sub-model", c.sub_model, "sub_model"],
      ["named models", c.models && Object.keys(c.models).length ? Object.entries(c.models).map(([k, v]) => `${k}=${v}`).join(", ") : null],
      ["max depth", c.max_depth, "max_depth"], ["prompt style", c.prompt_style], ["sub-calls", c.sub_calls],
      ["tools", Array.isArray(c.tools) && c.tools.length ? c.tools.join(", ") : null],
      ["model options", c.model_options && Object.keys(c.model_options).length ? JSON.stringify(c.model_options) : null],
    ])));
    box.append(section("budget", kv(Object.entries(b).map(([k, v]) => [k.replace(/_/g, " "), v === null ? "none" : String(v), "budget." + k]))));
    box.append(section("sandbox", kv([
      ["repl", c.repl, "repl"],
      ...Object.entries(lim).map(([k, v]) => [k.replace(/_/g, " "), v === null ? "none" : String(v)]),
    ])));
    box.append(section("context", kv([
      ["type", ctx.type], ["characters", fmtInt(ctx.total_chars)], ["items", ctx.num_items], ["source", ctx.source],
      ["skipped", Array.isArray(ctx.skipped) && ctx.skipped.length ? ctx.skipped.length + " files" : null],
    ]), ctx.preview ? pre(ctx.preview) : null));
    const known = new Set(["model", "sub_model", "models", "max_depth", "prompt_style", "sub_calls", "tools", "model_options", "budget", "repl", "limits"]);
    const rest = Object.entries(c).filter(([k]) => !known.has(k));
    if (rest.length) box.append(section("other settings", kv(rest.map(([k, v]) => [k.replace(/_/g, " "), typeof v === "object" && v !== null ? JSON.stringify(v) : String(v), "config." + k]))));
    if (run.usage) box.append(section("usage by model", usageTable(run.usage)));
    else box.append(section("usage", usageRow(run.totals)));
    if (run.ledger) box.append(section("ledger", pre(JSON.stringify(run.ledger, null, 2))));
    return box;
  }

  // ---------------------------------------------------------------- detail renderers
  const RENDER = {
    async run_start(box, d) {
      const s = dataOf(d.start), e = dataOf(d.end);
      box.append(kv([["question", s.question], ["status", e.status || (d.summary.open ? "running" : null), "status"], ["answer", e.answer, "answer"], ["error", e.error], ["turns", e.iterations], ["elapsed", typeof e.elapsed === "number" ? fmtTime(e.elapsed) : null]]));
      if (e.usage) box.append(section("usage by model", usageTable(e.usage)));
      const c = s.config || {};
      box.append(section("config", kv([["root model", c.model], ["sub-model", c.sub_model], ["max depth", c.max_depth], ["repl", c.repl], ["prompt style", c.prompt_style]])));
    },
    async rlm_start(box, d) {
      const s = dataOf(d.start), e = dataOf(d.end);
      box.append(kv([["depth", s.depth], ["question", s.question], ["status", e.status || (d.summary.open ? "running" : null), "status"], ["answer", e.answer, "answer"], ["error", e.error], ["turns", e.iterations]]));
      if (Array.isArray(s.prompt)) {
        const sec = section(`prompt (${s.prompt.length} messages)`);
        for (const m of s.prompt) {
          const det = h("details", { class: "msg" }, h("summary", null, `${m.role} · ${fmtInt(str(m.content).length)} characters`));
          det.addEventListener("toggle", () => { if (det.open && det.children.length === 1) det.append(pre(m.content)); });
          sec.append(det);
        }
        box.append(sec);
      }
    },
    async turn(box, d) {
      const members = await Promise.all((d.members || []).map((k) => this.src.get("node", { key: k }).catch(() => null)));
      for (const m of members) {
        if (!m) continue;
        const t = m.summary.t;
        if (m.missing) {
          box.append(h("p", { class: "note warn" }, `${KIND[t] || t}: its text is not embedded in this file (it was over the size cap)`));
          continue;
        }
        if (t === "lm_request") lmSection(box, m, true);
        else if (t === "cell") box.append(cellSection(m, true));
        else box.append(section(t, kv(Object.entries(dataOf(m.start)).map(([k, v]) => [k, str(v)]))));
      }
      const next = d.shown_next;
      if (next && typeof next.text === "string") {
        box.append(section("shown to the model next", pre(next.text, "shown"),
          next.complete ? null : h("p", { class: "note" }, `the first ${fmtInt(next.text.length)} characters (traces before schema 2 keep no more of a message)`)));
      }
    },
    async lm_request(box, d) { lmSection(box, d, false); },
    async cell(box, d) { box.append(cellSection(d, false)); },
    async subcall_start(box, d) {
      const s = dataOf(d.start), e = dataOf(d.end);
      box.append(kv([["kind", s.kind], ...Object.entries(s.summary || {}).map(([k, v]) => [k.replace(/_/g, " "), str(v)]), ["ok", e.ok === undefined ? (d.summary.open ? "in flight" : null) : String(e.ok)]]));
      const kids = await this.src.get("children", { key: d.summary.k, offset: 0, limit: 5 });
      const lms = kids.items.filter((k) => k.t === "lm_request");
      if (s.kind === "llm_query" && lms.length) {
        const lm = await this.src.get("node", { key: lms[0].k });
        lmSection(box, lm, true);
      } else if (kids.total) box.append(h("p", { class: "note" }, `${fmtInt(kids.total)} node(s) below: open the row to see them`));
    },
    async pending(box, d) { box.append(h("p", { class: "note" }, d.note || "")); },
    async warning(box, d) { const s = dataOf(d.start); box.append(kv([["source", s.source]]), pre(s.message)); },
    async budget(box, d) { const s = dataOf(d.start); box.append(kv([["limit", s.limit]]), pre(s.message), s.ledger ? section("ledger", pre(JSON.stringify(s.ledger, null, 2))) : null); },
    async check(box, d) {
      const s = dataOf(d.start);
      box.append(kv([["verdict", str(s.verdict)], ["refused", s.refused === undefined ? null : String(s.refused)]]), section("answer", pre(s.answer)), s.reason ? section("reason", pre(s.reason)) : null);
    },
    async default(box, d) {
      const s = dataOf(d.start), e = dataOf(d.end);
      const scal = [], big = [];
      for (const [k, v] of Object.entries({ ...s, ...e })) {
        if (v !== null && typeof v === "object") big.push([k, v]);
        else if (typeof v === "string" && v.length > 200) big.push([k, v]);
        else scal.push([k, str(v)]);
      }
      box.append(kv(scal));
      for (const [k, v] of big) box.append(section(k, pre(typeof v === "string" ? v : JSON.stringify(v, null, 2))));
    },
  };
  RENDER.compaction = RENDER.default;

  function lmSection(box, d, inTurn) {
    const s = dataOf(d.start), e = dataOf(d.end);
    const sum = d.summary;
    const wrap = h("section", { class: "lm", dataset: { node: sum.k } });
    if (inTurn) wrap.append(h("h3", null, `model call · ${s.model || "?"} (${s.purpose || "?"})`));
    const u = e.usage || null;
    wrap.append(kv([
      ["model", s.model, "model"], ["purpose", s.purpose], ["prompt style", s.prompt_style], ["messages", s.messages], ["input characters", fmtInt(s.input_chars)],
      ["time", typeof e.duration === "number" ? fmtTime(e.duration) : sum.open ? "in flight" : null, "time"],
      ["attempts", e.attempts], ["finish reason", e.finish_reason], ["cached", e.cached ? "yes" : null],
      ["input tokens", u ? fmtInt(u.input_tokens) : null, "lm.in"], ["output tokens", u ? fmtInt(u.output_tokens) : null, "lm.out"],
      ["cached input tokens", u && u.cached_input_tokens ? fmtInt(u.cached_input_tokens) : null], ["cost", u ? fmtCost(u.cost_usd) : null, "lm.cost"],
    ]));
    if (typeof s.last_message === "string" && (s.purpose !== "root" || !inTurn)) {
      wrap.append(section(s.purpose === "root" || s.purpose === "forced_final" ? "last message (what the model was shown after its last turn)" : "prompt", pre(s.last_message, "prompt"),
        d.prompt_complete === false ? h("p", { class: "note" }, `the first ${fmtInt(s.last_message.length)} characters (traces before schema 2 keep no more)`) : null));
    }
    if (e.error) wrap.append(section("error", pre(e.error, "error")));
    if (typeof e.text === "string") wrap.append(section("reply", d.reply_html !== undefined ? h("pre", { class: "reply", html: d.reply_html }) : pre(e.text, "reply")));
    box.append(wrap);
  }

  function cellSection(d, inTurn) {
    const s = dataOf(d.start);
    const box = h("div", { class: "cellbox", dataset: { node: d.summary.k } });
    box.append(h("h3", null, `cell · turn ${s.iteration ?? "?"}` + (typeof s.duration === "number" ? ` · ${fmtTime(s.duration)}` : "")));
    box.append(h("div", { "data-role": "code" }, codeBlock(d.code_html, s.code)));
    if (typeof s.shown === "string") {
      box.append(section("output, as the model was shown it", pre(s.shown, "output")));
      if (s.cut) box.append(h("p", { class: "note warn", "data-role": "cut" }, `${fmtInt(s.cut)} characters were cut from what the model saw`));
      if (typeof s.stdout === "string" && s.stdout !== s.shown) {
        const det = h("details", { class: "msg" }, h("summary", null, `the whole recorded output (${fmtInt(s.stdout.length)} characters)`));
        det.addEventListener("toggle", () => { if (det.open && det.children.length === 1) det.append(pre(s.stdout)); });
        box.append(det);
      }
    } else {
      box.append(section("output", s.stdout ? pre(s.stdout, "output") : h("p", { class: "note" }, "(no output)")));
      if (typeof s.stdout_total === "number" && typeof s.stdout === "string" && s.stdout_total > s.stdout.length) {
        box.append(h("p", { class: "note warn", "data-role": "cut" }, `the cell printed ${fmtInt(s.stdout_total)} characters; the trace keeps ${fmtInt(s.stdout.length)}`));
      }
    }
    if (s.error) box.append(section("error", pre(s.error, "error")));
    if (Array.isArray(s.notes) && s.notes.length) box.append(section("notes", ...s.notes.map((n) => h("p", { class: "note" }, str(n)))));
    if (s.final !== null && s.final !== undefined) box.append(section("FINAL", pre(s.final, "final")));
    const flags = [];
    if (s.timed_out) flags.push("the cell timed out");
    if (s.state_lost) flags.push("the REPL's variables were lost (the worker restarted)");
    for (const f of flags) box.append(h("p", { class: "note warn" }, f));
    if (!inTurn && d.summary.u) box.append(h("p", { class: "note" }, "sub-calls: " + fmtUsage(d.summary.u)));
    return box;
  }

  // ---------------------------------------------------------------- timeline
  const ROOT_COLORS = ["#263238", "#00515a", "#6a1b5e", "#5d4000", "#3b2680"];
  const SUB_COLORS = ["#2f6fe0", "#00a3b4", "#d04fb0", "#d49a00", "#8a6cf0"];
  const isRootPurpose = (p) => p === "root" || p === "forced_final";
  function callColor(tl, c) {
    if (c[7] === 1) return "#b3261e";
    if (c[7] === 3) return "#9ccc65";
    const pal = isRootPurpose(tl.purposes[c[5]]) ? ROOT_COLORS : SUB_COLORS;
    return pal[c[4] % pal.length];
  }
  function drawTimeline(panel, tl, onPick) {
    panel.replaceChildren();
    if (!tl.calls.length) { panel.append(h("p", { class: "empty" }, "No model calls in this trace.")); return; }
    const span = Math.max(1e-6, tl.t1 - tl.t0);
    let zoom = 1;
    const info = h("span", null, `${fmtInt(tl.calls.length)} model calls · at most ${tl.lanes} at once · ${fmtTime(span)}`);
    const zin = h("button", { type: "button", "aria-label": "zoom in" }, "+");
    const zout = h("button", { type: "button", "aria-label": "zoom out" }, "−");
    const kinds = new Map();
    for (const c of tl.calls) {
      const root = isRootPurpose(tl.purposes[c[5]]);
      const label = `${root ? "RLM turns" : "sub-calls"} at depth ${c[4]}`;
      if (!kinds.has(label)) kinds.set(label, (root ? ROOT_COLORS : SUB_COLORS)[c[4] % ROOT_COLORS.length]);
    }
    const legend = h("span", { class: "legend" },
      ...[...kinds].sort().map(([label, color]) => h("span", null, h("i", { style: `background:${color}` }), label)),
      h("span", null, h("i", { style: "background:#b3261e" }), "failed"), h("span", null, h("i", { style: "background:#9ccc65" }), "cached"));
    const scroller = h("div", { class: "scroller" });
    const canvas = h("canvas", { "data-role": "timeline", tabindex: "0", "aria-label": "timeline of model calls" });
    scroller.append(canvas);
    const tip = h("div", { class: "tip", hidden: true });
    panel.append(h("div", { class: "controls" }, info, zin, zout, legend), scroller, tip);
    const laneH = tl.lanes > 200 ? 3 : tl.lanes > 60 ? 6 : 14;
    const top = 44, left = 8;
    let xs = 1;
    function draw() {
      const width = Math.max(300, (scroller.clientWidth - 20) * zoom);
      const height = top + tl.lanes * laneH + 10;
      const dpr = window.devicePixelRatio || 1;
      canvas.width = width * dpr; canvas.height = height * dpr;
      canvas.style.width = width + "px"; canvas.style.height = height + "px";
      const g = canvas.getContext("2d");
      g.scale(dpr, dpr);
      g.clearRect(0, 0, width, height);
      xs = (width - left * 2) / span;
      // axis
      g.fillStyle = "#6a6f78"; g.font = "11px sans-serif";
      const step = niceStep(span / Math.max(2, width / 110));
      for (let t = 0; t <= span + 1e-9; t += step) {
        const x = left + t * xs;
        g.fillRect(x, 12, 1, 5);
        g.fillText(fmtTime(t), x + 2, 10);
      }
      // concurrency profile
      const ev = [];
      for (const c of tl.calls) { ev.push([c[1], 1], [c[2], -1]); }
      ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let cur = 0, lastX = left;
      g.fillStyle = "rgba(36,87,197,.25)";
      const ph = 20, base = 40;
      for (const [t, dlt] of ev) {
        const x = left + (t - tl.t0) * xs;
        if (cur) g.fillRect(lastX, base - ph * cur / tl.lanes, Math.max(0.5, x - lastX), ph * cur / tl.lanes);
        cur += dlt; lastX = x;
      }
      for (const c of tl.calls) {
        const x = left + (c[1] - tl.t0) * xs;
        const w = Math.max(1.5, (c[2] - c[1]) * xs);
        const y = top + c[3] * laneH;
        g.fillStyle = callColor(tl, c);
        if (c[7] === 2) g.globalAlpha = 0.5;
        g.fillRect(x, y + 1, w, laneH - 2);
        g.globalAlpha = 1;
      }
    }
    function hit(ev) {
      const r = canvas.getBoundingClientRect();
      const x = ev.clientX - r.left, y = ev.clientY - r.top;
      const lane = Math.floor((y - top) / laneH);
      const t = tl.t0 + (x - left) / xs;
      const slack = 3 / xs;
      return tl.calls.find((c) => c[3] === lane && t >= c[1] - slack && t <= c[2] + slack);
    }
    canvas.addEventListener("mousemove", (ev) => {
      const c = hit(ev);
      if (!c) { tip.hidden = true; canvas.style.cursor = "default"; return; }
      canvas.style.cursor = "pointer";
      tip.hidden = false;
      tip.textContent = `${tl.models[c[6]]} (${tl.purposes[c[5]]}) · depth ${c[4]}\nstart ${fmtTime(c[1] - tl.t0)} · ${c[7] === 2 ? "in flight" : fmtTime(c[2] - c[1])}${c[7] === 1 ? " · failed" : c[7] === 3 ? " · cached" : ""}`;
      tip.style.left = ev.clientX + 12 + "px";
      tip.style.top = ev.clientY + 12 + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    canvas.addEventListener("click", (ev) => { const c = hit(ev); if (c) onPick(c[0]); });
    zin.addEventListener("click", () => { zoom = Math.min(64, zoom * 2); draw(); });
    zout.addEventListener("click", () => { zoom = Math.max(1, zoom / 2); draw(); });
    requestAnimationFrame(draw);
  }
  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  // ---------------------------------------------------------------- bench folder
  async function benchInfo() {
    const r = await fetch(CONFIG.base + "api/info", { cache: "no-store" });
    return r.json();
  }
  function benchView(app, info) {
    const bench = info.bench;
    const root = h("div", { class: "viewer" });
    const header = h("header", { class: "bar" }, h("h1", null, `bench folder ${bench.root}`), h("span", { class: "totals" }, `${bench.rows.length} ${bench.results ? "results" : "trace files"}`));
    const body = h("div", { class: "bench", "data-role": "bench" });
    root.append(header, body);
    app.replaceChildren(root);
    const filter = h("input", { type: "search", placeholder: "filter (task, method, item…)", "aria-label": "filter rows" });
    const compareBtn = h("button", { type: "button", disabled: true, "data-role": "compare" }, "compare the two selected");
    const picked = [];
    body.append(h("div", { class: "controls" }, filter, compareBtn, h("span", { class: "note" }, "tick two rows to see their traces side by side")));
    if (bench.results) body.append(summaryTable(bench.rows));
    const table = h("table", { "data-role": "bench-table" });
    const cols = bench.results
      ? [["", ""], ["task", "task"], ["size", "size_label"], ["item", "item_id"], ["method", "method"], ["model", "model"], ["score", "score", 1], ["status", "status"], ["seconds", "seconds", 1], ["calls", "calls", 1], ["in", "input_tokens", 1], ["out", "output_tokens", 1], ["cost", "cost_usd", 1], ["trace", "tid"]]
      : [["", ""], ["trace file", "name"], ["bytes", "bytes", 1], ["trace", "tid"]];
    table.append(h("thead", null, h("tr", null, cols.map(([t, , num]) => h("th", { class: num ? "num" : null }, t)))));
    const tbody = h("tbody");
    table.append(tbody);
    body.append(table);
    const groups = new Map();
    if (bench.results) for (const r of bench.rows) {
      if (r.tid === null) continue;
      const g = [r.task, r.size_tokens, r.item_id, r.model].join("|");
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(r);
    }
    bench.rows.forEach((r, i) => {
      const tr = h("tr", { dataset: { i, text: Object.values(r).map(str).join(" ").toLowerCase() } });
      for (const [, f, num] of cols) {
        if (f === "") {
          const cb = h("input", { type: "checkbox", "aria-label": "select for comparison", disabled: r.tid === null ? true : null });
          cb.addEventListener("change", () => {
            if (cb.checked) picked.push([r, cb]); else picked.splice(picked.findIndex((p) => p[1] === cb), 1);
            while (picked.length > 2) { const [, old] = picked.shift(); old.checked = false; }
            compareBtn.disabled = picked.length !== 2;
          });
          tr.append(h("td", null, cb));
        } else if (f === "tid") {
          const cell = h("td");
          if (r.tid !== null) {
            cell.append(h("a", { href: `#/t/${r.tid}` }, "open"));
            const g = bench.results ? groups.get([r.task, r.size_tokens, r.item_id, r.model].join("|")) : null;
            const other = g && g.find((x) => x.method !== r.method);
            if (other) cell.append(" ", h("a", { href: `#/compare/${r.tid}/${other.tid}`, title: `side by side with ${other.method}` }, `⇄ ${other.method}`));
          } else cell.append(h("span", { class: "note" }, "none"));
          tr.append(cell);
        } else if (f === "score") {
          tr.append(h("td", { class: "num " + (r.score >= 1 ? "score1" : r.score <= 0 ? "score0" : "") }, r.score.toFixed(2)));
        } else if (f === "cost_usd") {
          tr.append(h("td", { class: "num" }, fmtCost(r.cost_usd)));
        } else if (num) {
          tr.append(h("td", { class: "num" }, f === "seconds" ? r[f].toFixed(1) : fmtInt(r[f])));
        } else tr.append(h("td", null, str(r[f])));
      }
      tbody.append(tr);
    });
    filter.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      for (const tr of tbody.children) tr.hidden = q && !tr.dataset.text.includes(q);
    });
    compareBtn.addEventListener("click", () => { location.hash = `#/compare/${picked[0][0].tid}/${picked[1][0].tid}`; });
    document.getElementById("app").setAttribute("aria-busy", "false");
    root.dataset.ready = "1";
  }
  function summaryTable(rows) {
    const agg = new Map();
    for (const r of rows) {
      const k = [r.task, r.size_label, r.method].join("|");
      if (!agg.has(k)) agg.set(k, { task: r.task, size: r.size_label, tokens: r.size_tokens, method: r.method, n: 0, score: 0, cost: 0, unpriced: false, seconds: 0 });
      const a = agg.get(k);
      a.n += 1; a.score += r.score; a.seconds += r.seconds;
      if (r.cost_usd === null || r.cost_usd === undefined) a.unpriced = true; else a.cost += r.cost_usd;
    }
    const t = h("table", { "data-role": "bench-summary", style: "margin-bottom:14px" },
      h("thead", null, h("tr", null, ["task", "size", "method", "items", "mean score", "mean seconds", "total cost"].map((x, i) => h("th", { class: i >= 3 ? "num" : null }, x)))));
    const tb = h("tbody");
    for (const a of [...agg.values()].sort((x, y) => x.task.localeCompare(y.task) || x.tokens - y.tokens || x.method.localeCompare(y.method))) {
      tb.append(h("tr", null, h("td", null, a.task), h("td", null, a.size), h("td", null, a.method), h("td", { class: "num" }, a.n), h("td", { class: "num" }, (a.score / a.n).toFixed(2)), h("td", { class: "num" }, (a.seconds / a.n).toFixed(1)), h("td", { class: "num" }, a.unpriced ? "cost ?" : fmtCost(a.cost))));
    }
    t.append(tb);
    return t;
  }

  // ---------------------------------------------------------------- routing
  let current = [];
  function stopAll() {
    for (const v of current) if (v.polling) clearTimeout(v.polling);
    current = [];
  }
  async function route() {
    const app = document.getElementById("app");
    app.setAttribute("aria-busy", "true");
    stopAll();
    if (CONFIG.mode === "static") {
      app.replaceChildren();
      const v = new TraceViewer(app, new StaticSource(DATA), { title: CONFIG.title });
      current = [v];
      return v.start();
    }
    const hash = location.hash;
    let m;
    if ((m = hash.match(/^#\/t\/(\d+)/))) {
      const info = await benchInfo();
      const name = (info.traces[Number(m[1])] || {}).name || "trace";
      app.replaceChildren();
      const v = new TraceViewer(app, new ServerSource(CONFIG.base, Number(m[1])), { title: name, back: info.view === "bench" ? { href: "#/", text: "bench" } : null });
      current = [v];
      return v.start();
    }
    if ((m = hash.match(/^#\/compare\/(\d+)\/(\d+)/))) {
      const info = await benchInfo();
      const wrap = h("div", { class: "compare", "data-role": "compare" });
      const top = h("header", { class: "bar" }, h("a", { href: "#/" }, "← bench"), h("h1", null, "side by side"));
      app.replaceChildren(top, wrap);
      const label = (tid) => {
        const row = info.bench && info.bench.rows.find((r) => r.tid === tid);
        return row ? (row.method ? `${row.method} · ${row.item_id} · score ${row.score.toFixed(2)}` : row.name) : (info.traces[tid] || {}).name;
      };
      const a = Number(m[1]), b = Number(m[2]);
      const cols = [a, b].map(() => h("div", { style: "display:flex;flex-direction:column;min-height:0" }));
      wrap.append(...cols);
      current = [
        new TraceViewer(cols[0], new ServerSource(CONFIG.base, a), { title: label(a), compact: true }),
        new TraceViewer(cols[1], new ServerSource(CONFIG.base, b), { title: label(b), compact: true }),
      ];
      return Promise.all(current.map((v) => v.start()));
    }
    if (CONFIG.view === "bench") {
      const info = await benchInfo();
      return benchView(app, info);
    }
    app.replaceChildren();
    const v = new TraceViewer(app, new ServerSource(CONFIG.base, 0), { title: CONFIG.title });
    current = [v];
    return v.start();
  }
  window.addEventListener("hashchange", route);
  window.__ubViewers = () => current;
  route();
})();
