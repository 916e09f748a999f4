// depot's web UI, progressively enhanced: copy buttons, and confirmation before deletes.
// Every page works without it.
"use strict";
function selectAndCopy(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try { return document.execCommand("copy"); } catch { return false; }
}
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const label = button.dataset.label || (button.dataset.label = button.textContent);
  const done = (ok) => {
    button.textContent = ok ? "Copied" : "Selected: copy it";
    setTimeout(() => { button.textContent = label; }, 2000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent.trim())
      .then(() => done(true), () => done(selectAndCopy(source)));
  } else {
    done(selectAndCopy(source));
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
for (const button of document.querySelectorAll("button[data-copy]")) button.hidden = false;
