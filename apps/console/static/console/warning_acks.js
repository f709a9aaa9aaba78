/* The 叫应 board of a published warning (admin/early_warnings/warningversion/page.html).
   Live: the event socket (/ws/v1/events/, the admin session, as the duty board) subscribed
   to the region streams of the user's scope; every warning.acknowledged of this version
   (and any warning.* event of it) refetches the board from its JSON (acks/). Fallback:
   the board is also refetched every config.refresh seconds, so it stays right when the
   socket is down. Silent times count up every second. #xc-acks[data-state] is
   connecting | live | polling. Every text is inserted as text. No inline script. */
(function () {
  "use strict";

  function span(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return (h ? h + ":" : "") + (h && m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }
  function cell(tr, value) { var td = document.createElement("td"); td.textContent = value == null ? "" : String(value); tr.appendChild(td); return td; }

  function start() {
    var root = document.getElementById("xc-acks");
    if (!root) { return; }
    var config = JSON.parse(root.getAttribute("data-config"));
    var W = config.strings || {};
    var body = document.getElementById("xc-ack-rows");
    var stateBox = document.getElementById("xc-acks-state");
    var offset = 0;  // server clock − browser clock, ms

    function setState(state) {
      root.setAttribute("data-state", state);
      stateBox.textContent = W["state_" + state] || "";
    }
    function tick() {
      var now = Date.now() + offset;
      Array.prototype.forEach.call(body.querySelectorAll("[data-silent-since]"), function (node) {
        var since = Date.parse(node.getAttribute("data-silent-since"));
        if (isFinite(since)) { node.textContent = span((now - since) / 1000); }
      });
    }
    function draw(data) {
      if (data.now) { offset = Date.parse(data.now) - Date.now(); }
      ["acked", "silent", "total"].forEach(function (name) {
        var node = root.querySelector('[data-count="' + name + '"]');
        if (node) { node.textContent = String(data[name]); }
      });
      while (body.firstChild) { body.removeChild(body.firstChild); }
      data.rows.forEach(function (row) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-ack-id", row.id);
        tr.setAttribute("data-user-id", row.user_id);
        tr.setAttribute("data-acked", row.acked ? "1" : "0");
        tr.className = row.acked ? "xc-ack--ok" : "xc-ack--silent";
        cell(tr, row.name); cell(tr, row.region); cell(tr, row.role);
        var answer = cell(tr, row.acked ? row.acked_at : W.silent + " ");
        if (!row.acked) {
          var since = document.createElement("span");
          since.setAttribute("data-silent-since", row.since);
          answer.appendChild(since);
        }
        cell(tr, row.channel || "—");
        body.appendChild(tr);
      });
      root.setAttribute("data-loaded", String(Date.now()));
      tick();
    }
    var inFlight = false, again = false;
    function refetch() {
      if (inFlight) { again = true; return; }
      inFlight = true;
      fetch(config.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data) { draw(data); } })
        .catch(function () {})
        .then(function () { inFlight = false; if (again) { again = false; refetch(); } });
    }

    window.setInterval(tick, 1000);
    window.setInterval(refetch, (config.refresh || 30) * 1000);
    tick();
    if (!config.live || !config.streams.length || !window.WebSocket) { setState("polling"); return; }

    var socket = null, attempt = 0, pingTimer = null;
    function connect() {
      setState("connecting");
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
        setState("polling");
        attempt += 1;
        var delay = Math.min(60000, 1000 * Math.pow(2, Math.min(attempt, 6)));
        window.setTimeout(connect, delay);
      };
    }
    function send(message) { if (socket && socket.readyState === 1) { socket.send(JSON.stringify(message)); } }
    var waiting = 0;
    function onFrame(frame) {
      if (frame.type === "hello") {
        if (frame.user_id === null) { setState("polling"); socket.close(); return; }
        waiting = config.streams.length;
        config.streams.forEach(function (name) { send({ type: "subscribe", stream: name, ref: name }); });
        pingTimer = window.setInterval(function () { send({ type: "ping" }); }, 25000);
      } else if (frame.type === "subscribed") {
        waiting -= 1;
        if (waiting <= 0) { attempt = 0; setState("live"); refetch(); }  // whatever came before
      } else if (frame.type === "event") {
        var data = frame.data || {}, kind = String(frame.kind || "");
        if (kind === "warning.acknowledged") {
          if (data.warning_id === config.version) { refetch(); }
        } else if (kind.indexOf("warning.") === 0) {
          refetch();  // published / updated / cancelled / expired: the board's state may change
        }
      } else if (frame.type === "resync") {
        refetch();
      } else if (frame.type === "error" && frame.stream) {
        waiting -= 1;
        if (waiting <= 0) { setState("live"); }
      }
    }
    connect();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
