// The question form (editor/question_form.html): show only the fields the chosen type uses (options
// for multiple choice, a range for numeric and date questions). Without this file every field shows,
// each saying which type it is for, and the server ignores the ones the type does not use.
(() => {
  const select = document.querySelector("select[name=question_type]");
  if (!select) return;
  const update = () => {
    document.querySelectorAll("[data-for-types]").forEach((element) => {
      element.hidden = !element.dataset.forTypes.split(" ").includes(select.value);
    });
  };
  select.addEventListener("change", update);
  update();
})();
