// Loaded in <head>, before the page paints: marks the page as scripted so CSS can show the
// controls that need JavaScript (.js-only) without a layout shift once the scripts run.
document.documentElement.classList.add("js");
