/* Draws the dashboard charts (admin/index.html) with unfold's Chart.js (window.Chart,
   served from /static/unfold/js/chart/chart.js). The data and every word come from the
   <script type="application/json" id="xc-chart-data"> block (json_script: data, not
   code); nothing inline runs. #xc-charts gets data-ready="1" once every canvas is drawn
   (the browser tests wait for it). */
(function () {
  "use strict";
  var RED = "#dc2626", BLUE = "#2563eb", GREEN = "#16a34a", AMBER = "#d97706", GREY = "#9ca3af";

  function bars(label, values, colour, axis) {
    return { type: "bar", label: label, data: values, backgroundColor: colour, yAxisID: axis || "count", order: 2 };
  }
  function line(label, values, colour, axis) {
    return {
      type: "line", label: label, data: values, borderColor: colour, backgroundColor: colour,
      yAxisID: axis || "rate", spanGaps: true, tension: 0.25, pointRadius: 2, order: 1
    };
  }
  function scales(words, withRate, countLabel) {
    var result = {
      count: { type: "linear", position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: countLabel || words.incidents } }
    };
    if (withRate) {
      result.rate = { type: "linear", position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: words.compliance } };
    }
    return result;
  }
  function countAndRate(series, words, countKey) {
    var countLabel = countKey === "tasks" ? words.tasks : words.incidents;
    return {
      data: {
        labels: series.labels,
        datasets: [bars(countLabel, series[countKey], GREY), line(words.compliance, series.compliance, RED)]
      },
      scales: scales(words, true, countLabel)
    };
  }
  function firstTime(series, words) {
    var colours = [BLUE, AMBER, GREEN], datasets = [], i = 0;
    Object.keys(series.medians).forEach(function (name) {
      datasets.push(line(words.intervals[name] || name, series.medians[name], colours[i % colours.length], "count"));
      i += 1;
    });
    return {
      data: { labels: series.labels, datasets: datasets },
      scales: { count: { type: "linear", beginAtZero: true, title: { display: true, text: words.minutes } } }
    };
  }
  function config(name, payload) {
    var s = payload.series, w = payload.words;
    switch (name) {
      case "daily": return countAndRate(s.daily, w, "incidents");
      case "weekly": return countAndRate(s.weekly, w, "incidents");
      case "first_time": return firstTime(s.weekly, w);
      case "category": return countAndRate(s.category, w, "incidents");
      case "region": return countAndRate(s.region, w, "incidents");
      case "team": return countAndRate(s.team, w, "tasks");
      default: return null;
    }
  }
  function draw() {
    var section = document.getElementById("xc-charts");
    var source = document.getElementById("xc-chart-data");
    if (!section || !source) { return; }
    var payload = JSON.parse(source.textContent);
    if (typeof window.Chart !== "function") {
      section.setAttribute("data-ready", "error");
      return;
    }
    Array.prototype.forEach.call(section.querySelectorAll("canvas[data-chart]"), function (canvas) {
      var built = config(canvas.getAttribute("data-chart"), payload);
      if (!built) { return; }
      new window.Chart(canvas, {
        type: "bar",
        data: built.data,
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { position: "bottom" } },
          scales: built.scales
        }
      });
    });
    section.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
