// Jobsite's only script: the modal dialog and toasts, driven by HTMX events.
// Views trigger the client events "jobsite:close-modal" and "jobsite:toast" (HX-Trigger).
(function () {
  "use strict";

  function modal() { return document.getElementById("modal"); }

  function showToast(message, level) {
    const box = document.getElementById("toasts");
    if (!box || !message) return;
    const toast = document.createElement("div");
    toast.className = "toast" + (level === "error" ? " toast-error" : "");
    toast.textContent = message;
    box.appendChild(toast);
    setTimeout(function () { toast.remove(); }, 5000);
  }

  let opener = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    const target = event.detail.target;
    if (target && target.id === "modal" && !modal().open) opener = event.detail.elt;
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const dialog = modal();
    if (event.detail.target !== dialog) return;
    if (!dialog.open) dialog.showModal();
    const first = dialog.querySelector("[autofocus], input:not([type=hidden]), select, textarea, button");
    if (first) first.focus();
  });

  document.addEventListener("close", function (event) {
    if (event.target !== modal()) return;
    event.target.innerHTML = "";
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  }, true);

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-modal]")) {
      event.preventDefault();
      modal().close();
    }
  });

  document.body.addEventListener("jobsite:close-modal", function () {
    if (modal().open) modal().close();
  });

  document.body.addEventListener("jobsite:toast", function (event) {
    showToast(event.detail.message || event.detail.value, event.detail.level);
  });
})();
