/* The finder's map: a progressive enhancement of the list of places, which stays the reference (same places,
   same order, reachable without JavaScript). Reads the JSON script tag #lieux-carte-donnees written by the page
   ({tiles: {url, attribution}, icons, labels, places: [{name, lat, lon, url, address}]}) and draws one marker per
   place in #carte-lieux. Markers are not in the tab order: the list below gives the same links to keyboard and
   screen reader users. Tiles that fail to load (no network) leave a grey map; the page does not depend on them. */
(function () {
  "use strict";

  var box = document.getElementById("carte-lieux");
  var source = document.getElementById("lieux-carte-donnees");
  if (!box || !source || typeof window.L === "undefined") {
    return;
  }
  var data;
  try {
    data = JSON.parse(source.textContent);
  } catch (error) {
    return;
  }
  if (!data || !data.places || !data.places.length) {
    return;
  }
  var L = window.L;

  function escapeHtml(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  // The attribution comes from settings as plain text: escape it, then turn its web addresses into links.
  function attributionHtml(text) {
    return escapeHtml(text || "").replace(/https?:\/\/[^\s()<>]+/g, function (url) {
      return '<a href="' + url + '">' + url + "</a>";
    });
  }

  function popupContent(place) {
    var root = document.createElement("div");
    var title = document.createElement("p");
    title.className = "fr-text--bold fr-mb-1v";
    var link = document.createElement("a");
    link.href = place.url;
    link.textContent = place.name;
    title.appendChild(link);
    var address = document.createElement("p");
    address.className = "fr-text--sm fr-mb-0";
    address.textContent = place.address;
    root.appendChild(title);
    root.appendChild(address);
    return root;
  }

  box.hidden = false;
  box.style.height = "26rem";
  box.style.maxHeight = "70vh";
  box.setAttribute("role", "region");
  box.setAttribute("aria-label", data.labels.map);

  // No animation for people who ask their system for less motion.
  var calm = Boolean(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  var map = L.map(box, {
    zoomControl: false,
    scrollWheelZoom: false,
    fadeAnimation: !calm,
    zoomAnimation: !calm,
    markerZoomAnimation: !calm,
  });
  var zoom = L.control.zoom({ zoomInTitle: data.labels.zoomIn, zoomOutTitle: data.labels.zoomOut }).addTo(map);
  // The DSFR underlines links with a background image: not on these buttons.
  Array.prototype.forEach.call(zoom.getContainer().querySelectorAll("a"), function (button) {
    button.style.backgroundImage = "none";
  });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  L.tileLayer(data.tiles.url, { attribution: attributionHtml(data.tiles.attribution), maxZoom: 19 }).addTo(map);

  var icon = L.icon({
    iconUrl: data.icons.icon,
    iconRetinaUrl: data.icons.icon2x,
    shadowUrl: data.icons.shadow,
    iconSize: [25, 41],
    iconAnchor: [12, 41],
    popupAnchor: [1, -34],
    shadowSize: [41, 41],
  });
  var points = [];
  data.places.forEach(function (place) {
    L.marker([place.lat, place.lon], { icon: icon, alt: place.name, title: place.name, keyboard: false })
      .bindPopup(popupContent(place))
      .addTo(map);
    points.push([place.lat, place.lon]);
  });
  map.on("popupopen", function (event) {
    var close = event.popup.getElement().querySelector(".leaflet-popup-close-button");
    if (close) {
      close.setAttribute("aria-label", data.labels.close);
      close.setAttribute("title", data.labels.close);
    }
  });
  // A marker stands above its point: keep room for it at the top.
  map.fitBounds(points, { paddingTopLeft: [24, 56], paddingBottomRight: [24, 24], maxZoom: 14 });
})();
