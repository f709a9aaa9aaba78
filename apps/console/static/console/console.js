/* Keeps the duty officer's pages current without a manual refresh: a page that carries
   data-xc-refresh="<seconds>" reloads itself on that period, unless the officer is busy
   on it (a field focused, a row selected, text typed). The live board will replace this
   with the event stream. No inline script: CSP allows 'self' only. */
(function () {
  "use strict";
  var DUTY_LISTS = ["model-incident", "model-report", "model-dispatchtask", "model-slaclock"];
  function busy() {
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) { return true; }
    if (document.querySelector(".action-select:checked")) { return true; }
    return Array.prototype.some.call(document.querySelectorAll("textarea, input[type=text]"), function (el) {
      return el.value && el.value !== el.defaultValue;
    });
  }
  function start() {
    var marker = document.querySelector("[data-xc-refresh]");
    var seconds = marker ? parseInt(marker.getAttribute("data-xc-refresh"), 10) : 0;
    var body = document.body.classList;
    if (!marker && body.contains("change-list") && DUTY_LISTS.some(function (m) { return body.contains(m); })) {
      seconds = 60;  // the duty lists: incidents, the triage queue, tasks, the overdue board
    }
    if (!(seconds >= 10)) { return; }
    window.setInterval(function () {
      if (!document.hidden && !busy()) { window.location.reload(); }
    }, seconds * 1000);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
