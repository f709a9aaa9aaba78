/* 一张图: draws the layers listed on the page (apps.console.map) with the vendored Leaflet.
   Configuration comes from #xc-map[data-config]; every text shown comes from the server
   (translated) and is inserted as text, never as HTML. Coordinates arrive in WGS84; on
   GCJ-02 tiles (Amap/Gaode, Tencent) they are shifted for display inside China.
   #xc-map gets data-ready="1" once every layer has loaded (or failed) the first time.
   No inline script: CSP allows 'self' only. */
(function () {
  "use strict";

  // --- WGS84 → GCJ-02 ------------------------------------------------------------------------
  // The published obfuscation of GB 20263 (Krasovsky ellipsoid), as in every open
  // implementation (eviltransform, coordtransform). Outside its bounding box of China
  // coordinates are returned unchanged. Known values are listed in docs/admin.md ("Map").
  var GCJ_A = 6378245.0;
  var GCJ_EE = 0.00669342162296594323;

  function outOfChina(lat, lng) {
    return lng < 72.004 || lng > 137.8347 || lat < 0.8293 || lat > 55.8271;
  }

  function shiftLat(x, y) {
    var r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320.0 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
    return r;
  }

  function shiftLng(x, y) {
    var r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
    return r;
  }

  function wgs84ToGcj02(lat, lng) {
    if (outOfChina(lat, lng)) { return [lat, lng]; }
    var dLat = shiftLat(lng - 105.0, lat - 35.0);
    var dLng = shiftLng(lng - 105.0, lat - 35.0);
    var radLat = lat / 180.0 * Math.PI;
    var magic = Math.sin(radLat);
    magic = 1 - GCJ_EE * magic * magic;
    var sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((GCJ_A * (1 - GCJ_EE)) / (magic * sqrtMagic) * Math.PI);
    dLng = (dLng * 180.0) / (GCJ_A / sqrtMagic * Math.cos(radLat) * Math.PI);
    return [lat + dLat, lng + dLng];
  }

  // Exposed for the browser tests and for whoever debugs an offset on the screen.
  (typeof window !== "undefined" ? window : globalThis).xcMap = { wgs84ToGcj02: wgs84ToGcj02, outOfChina: outOfChina };

  if (typeof document === "undefined") { return; }

  // --- Helpers -----------------------------------------------------------------------------

  function text(tag, value, className) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    el.textContent = value == null ? "" : String(value);
    return el;
  }

  function escapeHtml(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function isColour(value) { return typeof value === "string" && /^#[0-9a-fA-F]{6}$/.test(value); }

  function paintSwatches(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-colour]"), function (el) {
      var colour = el.getAttribute("data-colour");
      if (isColour(colour)) { el.style.backgroundColor = colour; }
    });
  }

  function popupContent(popup, strings) {
    var box = document.createElement("div");
    box.className = "xc-map-popup";
    box.appendChild(text("strong", popup.title || "", "xc-map-popup-title"));
    if (popup.rows && popup.rows.length) {
      var dl = document.createElement("dl");
      popup.rows.forEach(function (row) {
        dl.appendChild(text("dt", row[0]));
        dl.appendChild(text("dd", row[1]));
      });
      box.appendChild(dl);
    }
    if (popup.link && popup.link.url && popup.link.text && /^\//.test(popup.link.url)) {
      var a = text("a", popup.link.text, "xc-map-popup-link");
      a.href = popup.link.url;
      a.setAttribute("data-role", "open");
      box.appendChild(a);
    }
    return box;
  }

  function pinIcon(feature, layer) {
    var props = feature.properties || {};
    var pin = document.createElement("div");
    pin.className = "xc-map-pin xc-map-pin--" + layer.key;
    pin.style.backgroundColor = isColour(props.colour) ? props.colour : layer.colour;
    pin.setAttribute("data-layer", layer.key);
    if (feature.id != null) { pin.setAttribute("data-feature-id", String(feature.id)); }
    var attrs = props.attrs || {};
    Object.keys(attrs).forEach(function (name) {
      if (/^[a-z][a-z0-9-]*$/.test(name)) { pin.setAttribute("data-" + name, String(attrs[name])); }
    });
    var icon = props.icon || layer.icon;
    if (icon) { pin.appendChild(text("span", icon, "material-symbols-outlined xc-map-pin-icon")); }
    return L.divIcon({ html: pin, className: "xc-map-marker", iconSize: [26, 26], iconAnchor: [13, 13], popupAnchor: [0, -12] });
  }

  function heatColour(ratio) {
    // yellow → orange → red
    var stops = [[250, 204, 21], [249, 115, 22], [220, 38, 38]];
    var scaled = Math.max(0, Math.min(1, ratio)) * (stops.length - 1);
    var i = Math.min(stops.length - 2, Math.floor(scaled));
    var t = scaled - i;
    var rgb = stops[i].map(function (c, k) { return Math.round(c + (stops[i + 1][k] - c) * t); });
    return "#" + rgb.map(function (c) { return ("0" + c.toString(16)).slice(-2); }).join("");
  }

  // --- The map -------------------------------------------------------------------------------

  function start() {
    var root = document.getElementById("xc-map");
    if (!root || !window.L) { return; }
    var config = JSON.parse(root.getAttribute("data-config"));
    var strings = config.strings || {};
    var tiles = config.tiles;
    var gcj = !!(tiles && tiles.crs === "gcj02");
    paintSwatches(root);

    function toLatLng(lat, lng) {
      var p = gcj ? wgs84ToGcj02(lat, lng) : [lat, lng];
      return L.latLng(p[0], p[1]);
    }
    function coordsToLatLng(coords) { return toLatLng(coords[1], coords[0]); }

    var canvas = root.querySelector(".xc-map-canvas");
    var map = L.map(canvas, { zoomControl: true, zoomSnap: 0.25, maxZoom: tiles ? tiles.max_zoom : 18 });
    map.attributionControl.setPrefix(false);
    map.setView(config.centre, config.zoom);
    if (tiles) {
      [tiles.url, tiles.labels_url].forEach(function (url) {
        if (!url) { return; }
        var options = { maxZoom: tiles.max_zoom, attribution: url === tiles.url ? escapeHtml(tiles.attribution) : "" };
        if (tiles.subdomains && tiles.subdomains.length) { options.subdomains = tiles.subdomains; }
        if (tiles.referrer_policy) { options.referrerPolicy = tiles.referrer_policy; }
        L.tileLayer(url, options).addTo(map);
      });
    }
    var heatRenderer = L.canvas({ padding: 0.2 });
    var popupOpen = false;
    map.on("popupopen", function () { popupOpen = true; });
    map.on("popupclose", function () { popupOpen = false; });

    function bindFeature(feature, leafletLayer, permanentLabel) {
      var props = feature.properties || {};
      if (props.popup) { leafletLayer.bindPopup(popupContent(props.popup, strings)); }
      if (!props.label) { return; }
      var options = { direction: "top", offset: [0, -10] };
      if (permanentLabel) {
        // an outline gets its name in the middle, a centre just above its dot
        var centre = feature.geometry && feature.geometry.type === "Point";
        options = { permanent: true, className: "xc-map-label", direction: centre ? "top" : "center", offset: centre ? [0, -6] : [0, 0] };
      }
      leafletLayer.bindTooltip(text("span", props.label), options);
    }

    function draw(layer, data, group) {
      group.clearLayers();
      var features = (data && data.features) || [];
      if (layer.kind === "heat") {
        var max = features.reduce(function (m, f) { return Math.max(m, (f.properties || {}).weight || 0); }, 0) || 1;
        features.forEach(function (f) {
          if (!f.geometry || f.geometry.type !== "Point") { return; }
          var props = f.properties || {};
          var ratio = (props.weight || 0) / max;
          // screen-sized discs: visible at the new area's scale, blending where cells meet
          var circle = L.circleMarker(coordsToLatLng(f.geometry.coordinates), {
            renderer: heatRenderer, radius: 10 + 14 * ratio, stroke: false,
            fillColor: heatColour(ratio), fillOpacity: 0.3 + 0.45 * ratio
          });
          bindFeature(f, circle, false);
          group.addLayer(circle);
        });
        return features.length;
      }
      var areas = layer.kind === "areas";
      L.geoJSON(data, {
        coordsToLatLng: coordsToLatLng,
        style: function (f) {
          var props = f.properties || {};
          var colour = isColour(props.colour) ? props.colour : layer.colour;
          return { color: colour, weight: props.stroke || 2, dashArray: props.dashed ? "6 4" : null, fillColor: colour, fillOpacity: 0.04 };
        },
        pointToLayer: function (f, latlng) {
          if (areas) {
            var props = f.properties || {};
            return L.circleMarker(latlng, {
              radius: 4 + (props.stroke || 1), color: isColour(props.colour) ? props.colour : layer.colour,
              weight: 2, dashArray: props.dashed ? "3 3" : null, fillOpacity: 0.5
            });
          }
          return L.marker(latlng, { icon: pinIcon(f, layer), keyboard: true, riseOnHover: true });
        },
        onEachFeature: function (f, leafletLayer) { bindFeature(f, leafletLayer, areas); }
      }).eachLayer(function (l) { group.addLayer(l); });
      return features.length;
    }

    var groups = {};
    var entries = config.layers.map(function (layer) {
      var panel = root.querySelector('.xc-map-layer[data-layer="' + layer.key + '"]');
      var group = layer.kind === "heat" ? L.layerGroup() : L.featureGroup();
      var toggle = panel && panel.querySelector("[data-layer-toggle]");
      var entry = { layer: layer, panel: panel, group: group, toggle: toggle, loaded: false };
      groups[layer.key] = group;
      if (toggle) {
        toggle.addEventListener("change", function () {
          if (toggle.checked) { group.addTo(map); load(entry); } else { map.removeLayer(group); }
        });
        if (toggle.checked) { group.addTo(map); }
      } else if (layer.shown) {
        group.addTo(map);
      }
      return entry;
    });

    function showState(entry, count, truncated, failed) {
      if (!entry.panel) { return; }
      var counter = entry.panel.querySelector("[data-count]");
      var error = entry.panel.querySelector("[data-error]");
      entry.panel.setAttribute("data-state", failed ? "error" : "loaded");
      if (counter && !failed) {
        counter.textContent = String(count) + (truncated ? "+" : "");
        counter.title = truncated ? (strings.truncated || "") : "";
      }
      if (error) {
        error.hidden = !failed;
        error.textContent = failed ? (strings.failed || "") : "";
      }
    }

    function load(entry) {
      return fetch(entry.layer.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (data) {
          var count = draw(entry.layer, data, entry.group);
          entry.loaded = true;
          showState(entry, count, !!data.truncated, false);
        })
        .catch(function () { showState(entry, 0, false, true); });
    }

    function fitToData() {
      var bounds = null;
      entries.forEach(function (entry) {
        if (!map.hasLayer(entry.group) || !entry.group.getBounds) { return; }
        var b = entry.group.getBounds();
        if (b.isValid()) { bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast()); }
      });
      if (bounds) { map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15 }); }
    }

    // For the browser tests and debugging: the map and its layer groups by key.
    window.xcMap.map = map;
    window.xcMap.layers = groups;

    // First load: every layer (a hidden one too, so its count shows), then fit and say ready.
    Promise.all(entries.map(load)).then(function () {
      fitToData();
      root.setAttribute("data-ready", "1");
    });

    if (config.refresh >= 10) {
      window.setInterval(function () {
        if (document.hidden || popupOpen) { return; }
        entries.forEach(function (entry) { if (map.hasLayer(entry.group)) { load(entry); } });
      }, config.refresh * 1000);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
