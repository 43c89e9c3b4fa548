// The forecast control (forecasting/_forecast_form.html): keep each slider and its number box in
// step, say how far the new forecast is from the reader's last one, and show the running total of a
// multiple-choice forecast. Listeners sit on the document, so forms that htmx swaps in work too.
// The server validates everything again; without this file the form still posts.
(() => {
  const clamp = (v) => Math.min(99, Math.max(1, v));
  const fmt = (v) => `${Math.round(v * 100) / 100}`;

  const describeChange = (form) => {
    const out = form.querySelector("[data-change]");
    const number = form.querySelector("[data-slider-number]");
    if (!out || !number) return;
    const value = parseFloat(number.value);
    if (Number.isNaN(value) || value < 1 || value > 99) {
      out.textContent = "Type a number from 1 to 99.";
      return;
    }
    if (!form.dataset.last) {
      out.textContent = `Your first forecast on this question: ${fmt(value)}%.`;
      return;
    }
    const last = parseFloat(form.dataset.last);
    const delta = Math.round((value - last) * 100) / 100;
    if (delta === 0) {
      out.textContent = `The same as your last forecast (${fmt(last)}%).`;
    } else {
      const points = Math.abs(delta) === 1 ? "point" : "points";
      out.textContent = `${delta > 0 ? "+" : "−"}${fmt(Math.abs(delta))} ${points} from your ${fmt(last)}%`;
    }
  };

  const updateSum = (box) => {
    const sum = box.querySelector("[data-sum]");
    if (!sum) return;
    let total = 0;
    box.querySelectorAll("[data-option-input]").forEach((i) => { total += parseFloat(i.value) || 0; });
    total = Math.round(total * 100) / 100;
    const left = Math.round((100 - total) * 100) / 100;
    sum.textContent = left === 0 ? `${fmt(total)}%` : `${fmt(total)}% (${left > 0 ? `${fmt(left)} to go` : `${fmt(-left)} too many`})`;
    sum.className = left === 0 ? "ok" : "off";
  };

  const setValueText = (range) => range.setAttribute("aria-valuetext", `${range.value}%`);

  const init = (root) => {
    root.querySelectorAll("[data-forecast-form]").forEach((form) => {
      const range = form.querySelector("[data-slider-range]");
      if (range) setValueText(range);
      describeChange(form);
      form.querySelectorAll("[data-options-form]").forEach(updateSum);
    });
  };

  document.addEventListener("input", (event) => {
    const el = event.target;
    const form = el.closest && el.closest("[data-forecast-form]");
    if (!form) return;
    if (el.matches("[data-slider-range]")) {
      form.querySelector("[data-slider-number]").value = el.value;
      setValueText(el);
      describeChange(form);
    } else if (el.matches("[data-slider-number]")) {
      const v = parseFloat(el.value);
      const range = form.querySelector("[data-slider-range]");
      if (!Number.isNaN(v)) {
        range.value = Math.round(clamp(v));
        setValueText(range);
      }
      describeChange(form);
    } else if (el.matches("[data-option-input]")) {
      updateSum(el.closest("[data-options-form]"));
    }
  });

  // After htmx swaps a card or the panel in, keep the keyboard where the reader was: on the first
  // field with an error, or on the success message.
  document.addEventListener("htmx:afterSwap", (event) => {
    // outerHTML swaps replace the target: find its successor by id
    const id = event.detail.target && event.detail.target.id;
    const fresh = (id && document.getElementById(id)) || document.body;
    init(fresh);
    const invalid = fresh.querySelector("[data-forecast-form] [aria-invalid='true']");
    const saved = fresh.querySelector("[data-forecast-saved]");
    if (invalid) invalid.focus();
    else if (saved) {
      saved.setAttribute("tabindex", "-1");
      saved.focus();
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init(document));
  else init(document);
})();

// Live quote for the market's trade panel: cost, average price and probability after.
document.querySelectorAll("form[data-quote-url]").forEach((form) => {
  const out = form.querySelector("[data-quote]");
  let timer = null;
  const update = async () => {
    const params = new URLSearchParams(new FormData(form));
    params.delete("csrfmiddlewaretoken");
    if (!params.get("amount") && !params.get("shares")) return;
    const response = await fetch(`${form.dataset.quoteUrl}?${params}`);
    const body = await response.json();
    if (!response.ok) { out.textContent = body.errors.join(" "); out.className = "hint error-text"; return; }
    const verb = params.get("side") === "sell" ? "You receive" : "Cost";
    out.className = "hint";
    out.textContent = `${verb} ${Math.abs(body.cost).toFixed(2)} for ${body.shares.toFixed(2)} shares ` +
      `(average price ${(body.average_price * 100).toFixed(1)}%); probability after: ${(body.price_after * 100).toFixed(1)}%.`;
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
});
