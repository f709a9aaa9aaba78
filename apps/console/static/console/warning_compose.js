/* 撰写预警 (admin/early_warnings/warningversion/compose.html): the target regions are the
   checkboxes name="targets" of the tree; a click on a region outline of the small map
   toggles the same checkbox. A ticked region covers its subtree: its descendants are
   marked covered (class xc-covered) on the tree and filled on the map. The outlines are
   the map's "regions" layer (only regions on the tree are clickable). No inline script:
   CSP 'self'. #xc-target-map gets data-ready="1" once drawn. */
(function () {
  "use strict";

  var SELECTED = "#dc2626", COVERED = "#f97316", IDLE = "#0f766e";

  function start() {
    var root = document.getElementById("xc-target-map");
    var tree = document.getElementById("xc-tree");
    if (!tree) { return; }
    var boxes = {}, parents = {};
    Array.prototype.forEach.call(tree.querySelectorAll("li[data-region]"), function (li) {
      var box = li.querySelector("input[name=targets]");
      boxes[li.getAttribute("data-region")] = box;
      parents[li.getAttribute("data-region")] = li.getAttribute("data-parent") || "";
    });
    function ancestorTicked(code) {
      var p = parents[code];
      while (p) { if (boxes[p] && boxes[p].checked) { return true; } p = parents[p]; }
      return false;
    }
    var shapes = {};
    function paint() {
      Object.keys(boxes).forEach(function (code) {
        var covered = ancestorTicked(code);
        var li = boxes[code].closest("li");
        li.classList.toggle("xc-covered", covered);
        var shape = shapes[code];
        if (!shape) { return; }
        var colour = boxes[code].checked ? SELECTED : covered ? COVERED : IDLE;
        var style = { color: colour, fillColor: colour, fillOpacity: boxes[code].checked || covered ? 0.25 : 0.04 };
        if (shape.setStyle) { shape.setStyle(style); }
      });
    }
    tree.addEventListener("change", paint);
    paint();

    if (!root || !window.L) { return; }
    var config = JSON.parse(root.getAttribute("data-config"));
    var tiles = config.tiles;
    var toGcj = tiles && tiles.crs === "gcj02" && window.xcMap ? window.xcMap.wgs84ToGcj02 : null;
    function shown(lat, lng) { var p = toGcj ? toGcj(lat, lng) : [lat, lng]; return L.latLng(p[0], p[1]); }

    var map = L.map(root, { zoomControl: true, zoomSnap: 0.25, maxZoom: tiles ? tiles.max_zoom : 18 });
    map.attributionControl.setPrefix(false);
    map.setView(config.centre, config.zoom);
    window.xcTargetMap = { map: map, shapes: shapes };  // for the browser tests
    if (tiles) {
      [tiles.url, tiles.labels_url].forEach(function (url) {
        if (!url) { return; }
        var options = { maxZoom: tiles.max_zoom };
        if (tiles.subdomains && tiles.subdomains.length) { options.subdomains = tiles.subdomains; }
        if (tiles.referrer_policy) { options.referrerPolicy = tiles.referrer_policy; }
        var layer = L.tileLayer(url, options);
        if (url === tiles.url) { layer.getAttribution = function () { return ""; }; }
        layer.addTo(map);
      });
    }
    function ready() { root.setAttribute("data-ready", "1"); }
    if (!config.regions_url) { ready(); return; }
    fetch(config.regions_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { features: [] }; })
      .then(function (data) {
        // Deepest last, so a street's outline lies above its new town's and takes the click.
        var features = (data.features || []).filter(function (f) { return boxes[f.id]; });
        var group = L.geoJSON({ type: "FeatureCollection", features: features }, {
          coordsToLatLng: function (c) { return shown(c[1], c[0]); },
          style: function () { return { color: IDLE, weight: 1.5, fillOpacity: 0.04 }; },
          pointToLayer: function (feature, latlng) { return L.circleMarker(latlng, { radius: 6, color: IDLE, weight: 2, fillOpacity: 0.3 }); },
          onEachFeature: function (feature, layer) {
            var code = feature.id;
            shapes[code] = layer;
            var label = (feature.properties || {}).label;
            if (label) { layer.bindTooltip(String(label), { direction: "top", className: "xc-map-label" }); }
            layer.on("click", function (event) {
              L.DomEvent.stopPropagation(event);
              boxes[code].checked = !boxes[code].checked;
              boxes[code].dispatchEvent(new Event("change", { bubbles: true }));
            });
            if (layer.getElement) {
              layer.on("add", function () { var el = layer.getElement(); if (el) { el.setAttribute("data-region", code); } });
            }
          }
        }).addTo(map);
        var bounds = group.getBounds();
        if (bounds.isValid()) { map.fitBounds(bounds, { padding: [16, 16], maxZoom: 14 }); }
        paint();
      })
      .catch(function () { /* the tree works without the map */ })
      .then(ready);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
