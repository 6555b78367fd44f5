// "More like these", an optional extra on top of the plain GET forms: the pages work without it.
// The submit buttons say how many photos are picked (and wait for one), and a card's
// "More like this" and "Not like this" exclude each other.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("more-like-these");
  if (!form) return;
  const boxes = () => Array.from(form.elements).filter((element) => element.type === "checkbox");
  const buttons = Array.from(form.querySelectorAll('button[type="submit"]'));
  buttons.forEach((button) => { button.dataset.label = button.textContent; });

  // The count appears from the first pick on: changing the text at load would move the page (layout shift).
  const update = (counted) => {
    const liked = boxes().filter((box) => box.name === "like" && box.checked).length;
    const unliked = boxes().filter((box) => box.name === "unlike" && box.checked).length;
    buttons.forEach((button) => {
      if (counted) button.textContent = `${button.dataset.label} (${liked} liked${unliked ? `, ${unliked} not` : ""})`;
      button.disabled = liked === 0;
    });
  };

  // On the gallery the checkboxes lie outside the form (form="more-like-these"), so listen on the document.
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.form !== form) return;
    if (box.checked && (box.name === "like" || box.name === "unlike")) {
      const other = box.name === "like" ? "unlike" : "like";
      boxes().filter((each) => each.name === other && each.value === box.value).forEach((each) => { each.checked = false; });
    }
    update(true);
  });
  update(false);
});
