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
