// codeshelf portal: progressive enhancements only; every page works without this file.
// Deadlines count down: <time datetime="…" data-countdown> shows "in 3 h 12 min" (or "… ago").
(function () {
  "use strict";
  function left(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60);
    var parts = [];
    if (days) parts.push(days + " d");
    if (days || hours) parts.push(hours + " h");
    parts.push((minutes % 60) + " min");
    return ms >= 0 ? "in " + parts.join(" ") : parts.join(" ") + " ago";
  }
  function tick() {
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(at)) {
        el.textContent = el.getAttribute("datetime").slice(0, 16).replace("T", " ") +
          " UTC (" + left(at - Date.now()) + ")";
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
})();
