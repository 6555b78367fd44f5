// Keyboard navigation, an optional extra: the pages work without it.
// ← and → follow the page's previous/next links (gallery order), Esc its link back to the gallery.
// Each such link says which key it answers to in its data-key attribute.
"use strict";

const NAVIGATION_KEYS = ["ArrowLeft", "ArrowRight", "Escape"];

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  if (!NAVIGATION_KEYS.includes(event.key)) return;
  if (event.target instanceof Element && event.target.closest("input, textarea, select, [contenteditable]")) return;
  const link = document.querySelector(`a[data-key="${event.key}"]`);
  if (!link) return;
  event.preventDefault();
  link.click();
});
