// The question page's "Embed this question" panel (forecasting/templates/forecasting/_embed_code.html):
// "Copy" puts the embed code on the clipboard and says so in the panel's live region. The code stays
// selectable in its read-only textarea for browsers without a clipboard API (or without JavaScript).
(function () {
  "use strict";

  function copyBySelection(text) {
    // Older browsers, or a page not allowed the async clipboard: select the code and copy it.
    text.focus();
    text.select();
    text.setSelectionRange(0, text.value.length);
    return document.execCommand && document.execCommand("copy");
  }

  function attach(panel) {
    var button = panel.querySelector("[data-copy-embed-code]");
    var text = panel.querySelector("[data-embed-code-text]");
    var status = panel.querySelector("[data-copy-status]");
    if (!button || !text || !status) return;

    function say(message) {
      status.textContent = "";
      // A fresh text node each time, so a second "Copied" is announced again.
      window.setTimeout(function () { status.textContent = message; }, 50);
    }

    function fallback() {
      say(copyBySelection(text) ? "Copied" : "Press Ctrl+C (⌘C on a Mac) to copy the selected code");
    }

    button.addEventListener("click", function () {
      if (navigator.clipboard && navigator.clipboard.writeText && window.isSecureContext) {
        navigator.clipboard.writeText(text.value).then(function () { say("Copied"); }, fallback);
      } else {
        fallback();
      }
    });
  }

  document.querySelectorAll("[data-embed-code]").forEach(attach);
})();
