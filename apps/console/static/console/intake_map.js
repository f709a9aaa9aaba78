/* 电话接警's location picker (admin/incidents/incident/intake.html): a small map above the
   form. A click (or dragging the pin) writes the point into the form's latitude/longitude
   fields in WGS84, the system's coordinates; typing coordinates moves the pin. The region
   outlines/centres of the operator's scope (the map's "regions" layer) are the guide.
   On GCJ-02 tiles the pin is drawn shifted, and a click is shifted back (the inverse of
   map.js's wgs84ToGcj02, by fixed-point iteration: well under a metre after four steps).
   #xc-pick gets data-ready="1" once the map is drawn. No inline script: CSP 'self'. */
(function () {
  "use strict";

  function start() {
    var root = document.getElementById("xc-pick");
    if (!root || !window.L) { return; }
    var config = JSON.parse(root.getAttribute("data-config"));
    var latInput = document.getElementById("id_lat");
    var lngInput = document.getElementById("id_lng");
    var tiles = config.tiles;
    var toGcj = tiles && tiles.crs === "gcj02" && window.xcMap ? window.xcMap.wgs84ToGcj02 : null;

    function shown(lat, lng) {  // WGS84 → the tiles' coordinates
      var p = toGcj ? toGcj(lat, lng) : [lat, lng];
      return L.latLng(p[0], p[1]);
    }
    function stored(latlng) {  // the tiles' coordinates → WGS84
      var lat = latlng.lat, lng = latlng.lng;
      if (toGcj) {
        for (var i = 0; i < 4; i += 1) {
          var back = toGcj(lat, lng);
          lat += latlng.lat - back[0];
          lng += latlng.lng - back[1];
        }
      }
      return [lat, lng];
    }

    var map = L.map(root, { zoomControl: true, zoomSnap: 0.25, maxZoom: tiles ? tiles.max_zoom : 18 });
    map.attributionControl.setPrefix(false);
    map.setView(config.centre, config.zoom);
    window.xcPick = { map: map };  // for the browser tests, as map.js exposes xcMap
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

    var pin = null;
    function pinAt(at) {
      if (!pin) {
        // A drawn pin, not Leaflet's default image: its path is guessed from leaflet.css's
        // URL, which the hashed static file names defeat.
        var icon = L.divIcon({ className: "xc-map-marker", html: '<div class="xc-map-pin xc-pick-pin"></div>', iconSize: [26, 26], iconAnchor: [13, 13] });
        pin = L.marker(at, { draggable: true, keyboard: true, icon: icon }).addTo(map);
        pin.on("dragend", function () { write(pin.getLatLng()); });
      } else {
        pin.setLatLng(at);
      }
    }
    function place(lat, lng, pan) {
      var at = shown(lat, lng);
      pinAt(at);
      if (pan) { map.panTo(at); }
    }
    function write(latlng) {
      var p = stored(latlng);
      latInput.value = p[0].toFixed(6);
      lngInput.value = p[1].toFixed(6);
      latInput.dispatchEvent(new Event("change", { bubbles: true }));
      lngInput.dispatchEvent(new Event("change", { bubbles: true }));
    }
    function typed() {
      var lat = parseFloat(latInput.value), lng = parseFloat(lngInput.value);
      if (isFinite(lat) && isFinite(lng) && Math.abs(lat) <= 90 && Math.abs(lng) <= 180) { place(lat, lng, true); }
    }
    map.on("click", function (event) {
      pinAt(event.latlng);
      write(event.latlng);
    });
    if (latInput && lngInput) {
      latInput.addEventListener("input", typed);
      lngInput.addEventListener("input", typed);
      typed();  // a form shown again after a refusal keeps its point
    }

    function ready() { root.setAttribute("data-ready", "1"); }
    if (!config.regions_url) { ready(); return; }
    fetch(config.regions_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { features: [] }; })
      .then(function (data) {
        var guide = L.geoJSON(data, {
          coordsToLatLng: function (c) { return shown(c[1], c[0]); },
          style: function () { return { color: "#0f766e", weight: 1, fill: false, interactive: false }; },
          pointToLayer: function (feature, latlng) {
            return L.circleMarker(latlng, { radius: 3, color: "#0f766e", weight: 1, interactive: false });
          },
          onEachFeature: function (feature, layer) {
            var label = (feature.properties || {}).label;
            if (label) { layer.bindTooltip(String(label), { permanent: true, direction: "top", className: "xc-map-label" }); }
          }
        }).addTo(map);
        var bounds = guide.getBounds();
        if (bounds.isValid() && !pin) { map.fitBounds(bounds, { padding: [20, 20], maxZoom: 14 }); }
      })
      .catch(function () { /* the picker works without the guide */ })
      .then(ready);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
