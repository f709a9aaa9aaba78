/* 值班台, the live duty board (apps/console/board.py, docs/admin.md "The duty board").

   The page comes with its rows as JSON (#xc-board-rows) and its configuration
   (#xc-board-config: region streams with their heads, labels, words, URLs). This script
   draws the rows (most urgent first, a page at a time, filtered client-side), counts the
   SLA time left down every second, and follows the region streams on the event socket
   (/ws/v1/events/, authenticated by the admin session, apps/realtime/auth.py):

   - subscribes with since = the head read before the rows, so nothing between the page
     and the socket is lost; after a reconnect, since = the last seq seen (replay);
     a "resync" frame reloads every row from board/rows/;
   - applies each event to its row; what a payload does not carry (names, deadlines) is
     fetched from board/rows/?incident=..&report=.. — coalesced (one request in flight,
     at most 100 ids each, a whole reload when more than 300 wait);
   - a visual cue (xc-new, the alert line) and a sound cue (WebAudio tone, after the 🔔
     button enables it: browsers want a user gesture) for a new SOS, report, breach.

   No inline script (CSP); every word comes from the template or the config. */
(function () {
  "use strict";
  var root = document.getElementById("xc-board");
  if (!root) { return; }
  var config = JSON.parse(document.getElementById("xc-board-config").textContent);
  var L = config.labels, W = config.words;
  var streets = config.streets || {}, categories = config.categories || {};
  var offset = Date.parse(config.now) - Date.now();  // server clock minus ours
  var OPEN = { reported: 1, accepted: 1, in_progress: 1, resolved: 1 };
  var QUIET = { note: 1, casualties_revised: 1, rated: 1, command_post_members: 1, instructions: 1, delivered: 1 };
  var NEW_FOR_MS = 8000, BATCH = 100, RELOAD_OVER = 300;
  // A row that arrives while the board is longer than what is drawn (a storm: hundreds of
  // overdue rows rank before it) is drawn anyway, above the rest, for PIN_FOR_MS.
  var PIN_FOR_MS = 60000;

  var tbody = root.querySelector("[data-role=rows]");
  var filterBox = root.querySelector("[data-role=filter]");
  var kindBox = root.querySelector("[data-role=kind]");
  var stateBox = root.querySelector("[data-role=state]");
  var alertBox = root.querySelector("[data-role=alert]");
  var moreButton = root.querySelector("[data-role=more]");
  var shownBox = root.querySelector("[data-role=shown]");
  var soundButton = root.querySelector("[data-role=sound]");

  function now() { return Date.now() + offset; }
  function keyOf(kind, id) { return kind + ":" + id; }

  // --- The rows ------------------------------------------------------------------------
  var rows = new Map();
  var limit = config.pageSize || 200;

  function put(row, isNew) {
    var key = keyOf(row.kind, row.id);
    var old = rows.get(key);
    row.due = row.deadline ? Date.parse(row.deadline) : null;
    row.start = row.started ? Date.parse(row.started) : null;
    row.reported = Date.parse(row.reported_at);
    row.newUntil = isNew ? Date.now() + NEW_FOR_MS : (old ? old.newUntil : 0);
    row.pinUntil = isNew ? Date.now() + PIN_FOR_MS : (old ? old.pinUntil : 0);
    row.announced = old ? old.announced : false;
    rows.set(key, row);
    return row;
  }
  // Rows travel as lists in the order of "columns" (apps/console/board.py, pack()).
  function unpack(body) {
    return body.rows.map(function (values) {
      var row = {};
      body.columns.forEach(function (name, i) { row[name] = values[i]; });
      row.tasks = row.tasks.map(function (t) { return { id: t[0], team: t[1], status: t[2] }; });
      return row;
    });
  }
  unpack(JSON.parse(document.getElementById("xc-board-rows").textContent)).forEach(function (r) { put(r, false); });

  function breached(r) { return r.breached || (r.due !== null && !r.paused && r.due <= now()); }
  function compare(a, b) {
    var ta = breached(a) ? 0 : a.supervised ? 1 : 2, tb = breached(b) ? 0 : b.supervised ? 1 : 2;
    if (ta !== tb) { return ta - tb; }
    var da = a.due === null ? Infinity : a.due, db = b.due === null ? Infinity : b.due;
    if (da !== db) { return da < db ? -1 : 1; }
    if (a.sos !== b.sos) { return a.sos ? -1 : 1; }
    if (a.reported !== b.reported) { return a.reported - b.reported; }
    if (a.kind !== b.kind) { return a.kind < b.kind ? -1 : 1; }
    return a.id - b.id;
  }
  function label(map, value) { return (map && map[value]) || value || ""; }
  function haystack(r) {
    return [r.number, r.title, r.address, label(streets, r.street), label(L.status, r.status),
      label(L.severity, r.severity), label(L.loop, r.loop), label(categories, r.category),
      label(L.kind, r.kind), r.sos ? W.sos : "", r.supervised ? W.supervised : "", breached(r) ? W.breached : ""]
      .concat(r.tasks.map(function (t) { return t.team + " " + label(L.task, t.status); }))
      .join(" ").toLowerCase();
  }
  function matches(r, terms, kind) {
    if (kind && r.kind !== kind) { return false; }
    if (!terms.length) { return true; }
    var text = haystack(r);
    return terms.every(function (term) { return text.indexOf(term) !== -1; });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function badge(text, modifier) { return el("span", "xc-badge" + (modifier ? " xc-badge--" + modifier : ""), text); }

  // Keep in step with the row markup of admin/console/board.html.
  function rowElement(r) {
    var tr = el("tr", "xc-row");
    tr.setAttribute("data-kind", r.kind);
    tr.setAttribute("data-id", String(r.id));
    if (breached(r)) { tr.classList.add("xc-breached"); }
    if (r.supervised) { tr.classList.add("xc-supervised"); }
    if (r.sos) { tr.classList.add("xc-sos"); }
    if (r.newUntil > Date.now()) { tr.classList.add("xc-new"); }

    var sla = el("td", "xc-b-sla"), clock;
    if (r.deadline) {
      clock = el("span", "xc-countdown", "…");
      clock.setAttribute("data-deadline", r.deadline);
      if (r.started) { clock.setAttribute("data-started", r.started); }
    } else if (r.paused) {
      clock = el("span", "xc-countdown xc-paused", W.paused);
    } else {
      clock = el("span", "xc-countdown xc-noclock", "—");
    }
    sla.appendChild(clock);
    sla.appendChild(el("div", "xc-muted", label(L.clock, r.clock)));
    tr.appendChild(sla);

    var what = el("td", "xc-b-what");
    var link = el("a", null, (r.number ? r.number + " " : "") + (r.title || label(categories, r.category)));
    link.setAttribute("data-role", "open");
    link.href = config.urls[r.kind].replace("{id}", String(r.id));
    what.appendChild(link);
    if (r.sos) { what.appendChild(document.createTextNode(" ")); what.appendChild(badge(W.sos, "danger")); }
    if (r.supervised) { what.appendChild(document.createTextNode(" ")); what.appendChild(badge(W.supervised, "warn")); }
    if (r.drill) { what.appendChild(document.createTextNode(" ")); what.appendChild(badge(W.drill)); }
    what.appendChild(el("div", "xc-muted", r.address));
    tr.appendChild(what);

    var status = el("td");
    var statusBadge = badge(label(L.status, r.status));
    statusBadge.setAttribute("data-field", "status");
    status.appendChild(statusBadge);
    tr.appendChild(status);

    var grade = el("td");
    grade.appendChild(el("span", null, r.severity ? label(L.severity, r.severity) : "")).setAttribute("data-field", "severity");
    grade.appendChild(el("div", "xc-muted", r.loop ? label(L.loop, r.loop) : "")).setAttribute("data-field", "loop");
    tr.appendChild(grade);

    tr.appendChild(el("td", null, label(categories, r.category))).setAttribute("data-field", "category");
    tr.appendChild(el("td", null, label(streets, r.street))).setAttribute("data-field", "street");
    var when = el("td");
    when.appendChild(el("span", "xc-since", "")).setAttribute("data-since", r.reported_at);
    tr.appendChild(when);

    var tasks = el("td", "xc-b-tasks");
    r.tasks.forEach(function (t) {
      var span = el("span", "xc-task", t.team + " · " + label(L.task, t.status));
      span.setAttribute("data-task-id", String(t.id));
      span.setAttribute("data-task-state", t.status);
      tasks.appendChild(span);
    });
    if (!r.tasks.length && r.kind === "incident") { tasks.appendChild(el("span", "xc-muted", W.no_tasks)); }
    tr.appendChild(tasks);
    return tr;
  }

  var renderQueued = false;
  function scheduleRender() {
    if (renderQueued) { return; }
    renderQueued = true;
    window.requestAnimationFrame(render);
  }
  function render() {
    renderQueued = false;
    var terms = (filterBox.value || "").toLowerCase().split(/\s+/).filter(Boolean);
    var kind = kindBox.value;
    var all = Array.from(rows.values());
    var list = all.filter(function (r) { return matches(r, terms, kind); }).sort(compare);
    var fragment = document.createDocumentFragment();
    var wall = Date.now();
    list.slice(limit).forEach(function (r) {
      if (r.pinUntil > wall) { fragment.appendChild(rowElement(r)).classList.add("xc-pinned"); }
    });
    list.slice(0, limit).forEach(function (r) { fragment.appendChild(rowElement(r)); });
    if (!list.length) {
      var empty = el("tr", "xc-board-empty"), cell = el("td", null, W.empty);
      cell.colSpan = 8;
      empty.appendChild(cell);
      fragment.appendChild(empty);
    }
    tbody.textContent = "";
    tbody.appendChild(fragment);
    var shown = Math.min(limit, list.length);
    shownBox.textContent = list.length > shown ? W.shown.replace("%(shown)s", shown).replace("%(total)s", list.length) : "";
    moreButton.hidden = list.length <= shown;
    counts(all);
    tick();
  }
  function counts(all) {
    var n = { incident: 0, report: 0, breached: 0 };
    all.forEach(function (r) { n[r.kind] += 1; if (breached(r)) { n.breached += 1; } });
    Object.keys(n).forEach(function (name) {
      var box = root.querySelector("[data-count=" + name + "]");
      if (box) { box.textContent = String(n[name]); }
    });
  }

  // --- Every second: countdowns, "reported … ago", the end of xc-new ------------------------
  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var two = function (v) { return (v < 10 ? "0" : "") + v; };
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s % 60);
  }
  function tick() {
    var t = now(), resort = false;
    Array.prototype.forEach.call(tbody.querySelectorAll("[data-deadline]"), function (node) {
      var due = Date.parse(node.getAttribute("data-deadline"));
      var started = Date.parse(node.getAttribute("data-started") || "");
      var left = due - t;
      var tr = node.closest("tr");
      node.classList.remove("xc-sla-ok", "xc-sla-warn", "xc-sla-breached");
      if (left <= 0) {
        node.textContent = W.overdue + " " + span(left);
        node.classList.add("xc-sla-breached");
        if (tr && !tr.classList.contains("xc-breached")) {
          var r = rows.get(keyOf(tr.getAttribute("data-kind"), tr.getAttribute("data-id")));
          if (r && !r.paused) { r.breached = true; resort = true; cue("breach", r); }
        }
      } else {
        node.textContent = span(left) + " " + W.left;
        var window_ = started ? due - started : 0;
        node.classList.add(window_ > 0 && left < window_ / 4 ? "xc-sla-warn" : "xc-sla-ok");
      }
    });
    Array.prototype.forEach.call(tbody.querySelectorAll("[data-since]"), function (node) {
      node.textContent = span(t - Date.parse(node.getAttribute("data-since")));
    });
    var wall = Date.now();
    Array.prototype.forEach.call(tbody.querySelectorAll("tr.xc-new"), function (tr) {
      var r = rows.get(keyOf(tr.getAttribute("data-kind"), tr.getAttribute("data-id")));
      if (!r || r.newUntil <= wall) { tr.classList.remove("xc-new"); }
    });
    Array.prototype.forEach.call(tbody.querySelectorAll("tr.xc-pinned"), function (tr) {
      var r = rows.get(keyOf(tr.getAttribute("data-kind"), tr.getAttribute("data-id")));
      if (!r || r.pinUntil <= wall) { resort = true; }
    });
    if (resort) { scheduleRender(); }
  }

  // --- Cues ------------------------------------------------------------------------------
  var audio = null;
  var soundOn = window.localStorage && window.localStorage.getItem("xc-board-sound") === "1";
  var TONES = { sos: [[880, 660, 880, 660, 880, 660], 0.16], report: [[660, 880], 0.14], breach: [[440, 330], 0.3] };
  function ensureAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!audio && Context) { audio = new Context(); }
    if (audio && audio.state === "suspended") { audio.resume(); }
  }
  function tone(name) {
    if (!soundOn || !audio || audio.state !== "running") { return; }
    var notes = TONES[name][0], length = TONES[name][1], t = audio.currentTime;
    notes.forEach(function (frequency, i) {
      var osc = audio.createOscillator(), gain = audio.createGain(), at = t + i * length;
      osc.type = "sine";
      osc.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + length);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(at);
      osc.stop(at + length + 0.02);
    });
  }
  function showSound() {
    soundButton.setAttribute("aria-pressed", soundOn ? "true" : "false");
    soundButton.querySelector("[data-role=sound-label]").textContent = soundOn ? W.sound_on : W.sound_off;
  }
  soundButton.addEventListener("click", function () {
    soundOn = !soundOn;
    if (window.localStorage) { window.localStorage.setItem("xc-board-sound", soundOn ? "1" : "0"); }
    if (soundOn) { ensureAudio(); window.setTimeout(function () { tone("report"); }, 50); }
    showSound();
  });
  // A remembered "on" still needs a gesture on this page before the browser lets it play.
  document.addEventListener("pointerdown", function () { if (soundOn) { ensureAudio(); } }, { once: true });
  showSound();

  var alertTimer = null;
  var announced = new Set();
  function cue(what, r) {
    var id = what + ":" + r.kind + ":" + r.id;
    if (announced.has(id)) { return; }
    announced.add(id);
    tone(what);
    var text = what === "sos" ? W.new_sos : what === "breach" ? W.new_breach : W.new_report;
    alertBox.textContent = text + " · " + (r.number ? r.number + " " : "") + (r.title || label(categories, r.category)) + " · " + label(streets, r.street);
    alertBox.className = "xc-board-alert xc-board-alert--" + what;
    alertBox.hidden = false;
    window.clearTimeout(alertTimer);
    alertTimer = window.setTimeout(function () { alertBox.hidden = true; }, 10000);
  }

  // --- Rows the events cannot draw: board/rows/ ----------------------------------------------
  var wanted = new Set(), inflight = false, flushTimer = null, reloadWanted = false;
  function want(kind, id) {
    wanted.add(keyOf(kind, id));
    if (!flushTimer && !inflight) { flushTimer = window.setTimeout(flush, 250); }
  }
  function reloadAll() {
    reloadWanted = true;
    wanted.clear();
    if (!flushTimer && !inflight) { flushTimer = window.setTimeout(flush, 0); }
  }
  function flush() {
    flushTimer = null;
    if (inflight) { return; }
    if (wanted.size > RELOAD_OVER) { reloadWanted = true; wanted.clear(); }
    var url = config.rowsUrl, batch = [];
    if (!reloadWanted) {
      if (!wanted.size) { return; }
      batch = Array.from(wanted).slice(0, BATCH);
      batch.forEach(function (key) { wanted.delete(key); });
      url += "?" + batch.map(function (key) { var p = key.split(":"); return p[0] + "=" + p[1]; }).join("&");
    }
    var whole = reloadWanted;
    reloadWanted = false;
    inflight = true;
    window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) { loggedOut(); throw new Error("logged out"); }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) { applyRows(body); })
      .catch(function () {
        if (whole) { reloadWanted = true; } else { batch.forEach(function (key) { wanted.add(key); }); }
      })
      .then(function () {
        inflight = false;
        if ((wanted.size || reloadWanted) && !isLoggedOut) { flushTimer = window.setTimeout(flush, 1000); }
      });
  }
  function applyRows(body) {
    Object.assign(streets, body.streets || {});
    Object.assign(categories, body.categories || {});
    var fresh = unpack(body);
    if (body.complete) {
      var keep = new Set(fresh.map(function (r) { return keyOf(r.kind, r.id); }));
      Array.from(rows.keys()).forEach(function (key) { if (!keep.has(key)) { rows.delete(key); } });
    }
    fresh.forEach(function (r) { put(r, false); });
    (body.gone || []).forEach(function (key) { rows.delete(key); });
    scheduleRender();
  }

  // --- Events ------------------------------------------------------------------------------
  function fromSummary(inc, old) {
    return {
      kind: "incident", id: inc.id, number: inc.number, title: inc.title, status: inc.status,
      severity: inc.severity, loop: inc.loop, category: inc.category, street: inc.region,
      address: inc.address, reported_at: old ? old.reported_at : new Date(now()).toISOString(),
      sos: inc.priority >= 2, drill: inc.is_drill, supervised: old ? old.supervised : false,
      breached: old ? old.breached : false, paused: old ? old.paused : false,
      deadline: old ? old.deadline : null, started: old ? old.started : null, clock: old ? old.clock : "",
      tasks: old ? old.tasks : []
    };
  }
  function incidentChanged(inc, entryKind) {
    var key = keyOf("incident", inc.id), old = rows.get(key);
    if (!OPEN[inc.status]) {
      if (old) { rows.delete(key); scheduleRender(); }
      return null;
    }
    var row = put(fromSummary(inc, old), !old);
    if (entryKind === "supervised") { row.supervised = true; }
    if (entryKind === "sla_breached") { row.breached = true; }
    if (!old && row.sos) { cue("sos", row); }
    if (!old || !QUIET[entryKind]) { want("incident", inc.id); }
    scheduleRender();
    return row;
  }
  function rowOfTask(taskId) {
    var found = null;
    rows.forEach(function (r) {
      if (!found && r.tasks.some(function (t) { return t.id === taskId; })) { found = r; }
    });
    return found;
  }
  function apply(frame) {
    var kind = frame.kind || "", data = frame.data || {};
    if (kind === "report.submitted" && data.report) {
      var rep = data.report, key = keyOf("report", rep.id);
      if (!rows.has(key)) {
        var row = put({
          kind: "report", id: rep.id, number: "", title: (rep.text || "").slice(0, 80), status: "submitted",
          severity: "", loop: "", category: rep.category, street: rep.region, address: rep.address,
          reported_at: rep.created_at, sos: rep.is_sos, drill: false, supervised: false, breached: false,
          paused: false, deadline: null, started: null, clock: "", tasks: []
        }, true);
        cue(rep.is_sos ? "sos" : "report", row);
      }
      want("report", rep.id);
      scheduleRender();
    } else if (kind === "report.triaged") {
      if (rows.delete(keyOf("report", data.report_id))) { scheduleRender(); }
    } else if (kind.indexOf("incident.") === 0 && data.incident) {
      incidentChanged(data.incident, data.entry ? data.entry.kind : kind.slice(9));
    } else if (kind.indexOf("task.") === 0 && data.task) {
      var task = data.task, what = kind.slice(5);
      var inc = incidentChanged(data.incident, "instructions");
      if (inc) {
        var tasks = inc.tasks.filter(function (t) { return t.id !== task.id; });
        tasks.push({ id: task.id, team: task.team, status: task.status });
        inc.tasks = tasks;
        if (!QUIET[what]) { want("incident", inc.id); }
        scheduleRender();
      }
    } else if (kind === "sla.escalated") {
      var target = data.subject_type === "task" ? rowOfTask(data.subject_id)
        : rows.get(keyOf(data.subject_type === "report" ? "report" : "incident", data.subject_id));
      if (!target) { return; }
      if (data.event === "breached") { target.breached = true; cue("breach", target); }
      if (data.actions && data.actions.supervised) { target.supervised = true; }
      want(target.kind, target.id);
      scheduleRender();
    }
  }

  // --- The socket ----------------------------------------------------------------------------
  var seqs = {}, pending = {}, socket = null, attempt = 0, isLoggedOut = false, pingTimer = null;
  Object.keys(config.streams).forEach(function (name) { seqs[name] = config.streams[name]; });

  function setState(state, text) {
    root.setAttribute("data-state", state);
    stateBox.textContent = text || W["state_" + state] || "";
    stateBox.className = "xc-board-state xc-board-state--" + state;
  }
  function loggedOut() {
    isLoggedOut = true;
    setState("offline", W.state_logged_out);
    if (socket) { socket.close(); }
  }
  function ready(stream) {
    delete pending[stream];
    if (!Object.keys(pending).length && socket && socket.readyState === 1) { attempt = 0; setState("live"); }
  }
  function connect() {
    if (isLoggedOut) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new window.WebSocket(scheme + window.location.host + config.wsPath);
    socket.onmessage = function (message) {
      var frame;
      try { frame = JSON.parse(message.data); } catch (e) { return; }
      onFrame(frame);
    };
    socket.onclose = function () {
      window.clearInterval(pingTimer);
      socket = null;
      if (isLoggedOut) { return; }
      setState("reconnecting");
      attempt += 1;
      var delay = Math.min(30000, 500 * Math.pow(2, Math.min(attempt, 6))) * (0.75 + Math.random() / 2);
      window.setTimeout(connect, attempt === 1 ? 300 : delay);
    };
  }
  function send(message) { if (socket && socket.readyState === 1) { socket.send(JSON.stringify(message)); } }
  function onFrame(frame) {
    var stream = frame.stream;
    if (frame.type === "hello") {
      if (frame.user_id === null) { loggedOut(); return; }
      pending = {};
      Object.keys(seqs).forEach(function (name) {
        pending[name] = -1;  // until "subscribed" (then: the events still to replay)
        send({ type: "subscribe", stream: name, since: seqs[name], ref: name });
      });
      if (!Object.keys(seqs).length) { setState("live"); }
      pingTimer = window.setInterval(function () { send({ type: "ping" }); }, 25000);
    } else if (frame.type === "subscribed") {
      if (!frame.replayed) { seqs[stream] = Math.max(seqs[stream] || 0, frame.last_seq); ready(stream); }
      else { pending[stream] = frame.replayed; }
    } else if (frame.type === "event") {
      if (stream in seqs && frame.seq <= seqs[stream]) { return; }  // seen already
      seqs[stream] = frame.seq;
      apply(frame);
      if (pending[stream] > 0) { pending[stream] -= 1; if (!pending[stream]) { ready(stream); } }
    } else if (frame.type === "resync") {
      seqs[stream] = frame.last_seq;
      reloadAll();
      if (stream in pending) { ready(stream); }
    } else if (frame.type === "error") {
      if (frame.code === "not_authenticated") { loggedOut(); return; }
      if (frame.stream && frame.stream in pending) {
        delete seqs[frame.stream];
        ready(frame.stream);
      }
      if (frame.message) {
        alertBox.textContent = frame.message;
        alertBox.className = "xc-board-alert";
        alertBox.hidden = false;
      }
    }
  }

  // --- Controls ------------------------------------------------------------------------------
  var filterTimer = null;
  filterBox.addEventListener("input", function () {
    window.clearTimeout(filterTimer);
    filterTimer = window.setTimeout(function () { limit = config.pageSize || 200; scheduleRender(); }, 120);
  });
  kindBox.addEventListener("change", function () { limit = config.pageSize || 200; scheduleRender(); });
  moreButton.addEventListener("click", function () { limit += config.pageSize || 200; scheduleRender(); });

  render();
  window.setInterval(tick, 1000);
  setState("connecting");
  connect();
})();
