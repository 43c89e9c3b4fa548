// Keep each slider and its number box in step, and show the running total of a
// multiple-choice forecast. The server validates everything again.
document.querySelectorAll("[data-slider]").forEach((row) => {
  const range = row.querySelector('input[type="range"]');
  const number = row.querySelector('input[type="number"]');
  range.addEventListener("input", () => { number.value = range.value; });
  number.addEventListener("input", () => {
    const v = parseFloat(number.value);
    if (!Number.isNaN(v)) range.value = Math.round(Math.min(99, Math.max(1, v)));
  });
});
document.querySelectorAll("[data-options-form]").forEach((box) => {
  const sum = box.closest("form").querySelector("[data-sum]");
  const update = () => {
    let total = 0;
    box.querySelectorAll('input[type="number"]').forEach((i) => { total += parseFloat(i.value) || 0; });
    sum.textContent = `Total: ${Math.round(total * 100) / 100}%`;
    sum.className = Math.abs(total - 100) < 1e-9 ? "ok" : "off";
  };
  box.addEventListener("input", update);
  update();
});
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
