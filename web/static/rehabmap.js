// rehabmap pages work without JavaScript; this adds what NHS.UK frontend's scripts give (menu, error
// summary focus, exclusive checkboxes) and two conveniences: print buttons and "copy link".
import { initAll } from "./nhsuk/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();

for (const button of document.querySelectorAll("[data-rm-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}

// A link to share is relative unless the server knows its public address (it never trusts the Host
// header): the browser knows where it is, so the copy offered is the full address.
for (const field of document.querySelectorAll("input.rm-share-link")) {
  if (field.value) field.value = new URL(field.value, window.location.href).href;
}

for (const button of document.querySelectorAll("[data-rm-copy]")) {
  const field = document.getElementById(button.dataset.rmCopy);
  const status = document.getElementById(button.dataset.rmCopy + "-status");
  if (!field || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      if (status) status.textContent = "Link copied.";
    } catch {
      field.select();
      if (status) status.textContent = "Select the link and copy it.";
    }
  });
}
