// Drop a photo anywhere on the search page to upload it: an optional extra on top of the plain form.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.upload");
  if (!form) return;
  const input = form.querySelector('input[type="file"]');
  const hint = form.querySelector(".drop-hint");
  hint.hidden = false;

  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  const setDropping = (on) => document.body.classList.toggle("dropping", on);

  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    setDropping(true);
  });
  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) setDropping(false);
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event) || event.dataTransfer.files.length === 0) return;
    event.preventDefault();
    setDropping(false);
    input.files = event.dataTransfer.files;
    form.requestSubmit();
  });
});
