// A question inside another site's page (forecasting/templates/embed/question.html): every
// data-refresh-seconds, while the page is visible, fetch this same page and swap in its
// [data-embed-live] part, so the number, sparkline and counts stay live without a reload.
// The server renders everything; without JavaScript the page is simply not refreshed.
(function () {
  "use strict";
  var seconds = Number(document.body.dataset.refreshSeconds || 0);
  if (!seconds || !window.fetch || !window.DOMParser) return;

  function refresh() {
    if (document.hidden) return; // nobody is looking: spare the server
    fetch(window.location.href, { cache: "no-cache", credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("embed refresh: " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-embed-live]");
        var current = document.querySelector("[data-embed-live]");
        if (fresh && current) current.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () {
        // A failed refresh keeps the last number on screen; the next tick tries again.
      });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
