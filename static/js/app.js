// Jobsite's only script: the modal dialog, toasts and the bulk selection count, driven by HTMX
// events. Views trigger the client events "jobsite:close-modal" and "jobsite:toast" (HX-Trigger).
// Everything here is an enhancement: without it, links and forms still work as plain pages.
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

  // The element that opened the modal gets focus back on close. A save replaces the row the
  // button was in, so remember an id to look the new one up by: its own, or for a button that
  // may be gone from the new row (Cancel…), the one named by data-focus-after.
  // The dialog's "close" event arrives asynchronously, possibly after the next opening has
  // begun, so the opener is only adopted when the dialog actually opens.
  let pendingOpener = null;
  let opener = null;

  function openerOf(elt) {
    return { elt: elt, id: elt.dataset.focusAfter || elt.id || "" };
  }

  // A request made after the session expired is redirected to the login page. Go there as a
  // whole page, coming back here afterwards, instead of swapping the login form into a
  // fragment (a table, a progress panel, the modal).
  document.addEventListener("htmx:beforeSwap", function (event) {
    const loginPath = document.body.dataset.loginUrl;
    const responseURL = event.detail.xhr && event.detail.xhr.responseURL;
    if (!loginPath || !responseURL || new URL(responseURL).pathname !== loginPath) return;
    event.detail.shouldSwap = false;
    const here = window.location.pathname + window.location.search;
    window.location.assign(loginPath + "?next=" + encodeURIComponent(here));
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    const target = event.detail.target;
    if (target && target.id === "modal" && !modal().open) pendingOpener = openerOf(event.detail.elt);
  });

  // Open on settle, not swap: htmx activates the new form's hx-post when it settles, and
  // Enter pressed before that would send a plain full-page POST.
  document.addEventListener("htmx:afterSettle", function (event) {
    const dialog = modal();
    if (event.detail.target !== dialog) return;
    if (!dialog.open) {
      opener = pendingOpener;
      dialog.showModal();
    }
    const first = dialog.querySelector(
      "[autofocus], input:not([type=hidden]), select, textarea, button"
    );
    if (first) first.focus();
  });

  document.addEventListener("close", function (event) {
    const dialog = event.target;
    if (dialog !== modal() || dialog.open) return;  // reopened meanwhile: nothing to undo
    dialog.innerHTML = "";
    if (opener) {
      const back = document.contains(opener.elt) ? opener.elt : document.getElementById(opener.id);
      if (back) back.focus();
    }
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

  // HTMX does not swap error responses; say something instead of doing nothing.
  document.addEventListener("htmx:responseError", function (event) {
    const status = event.detail.xhr.status;
    showToast(status === 403
      ? "You do not have permission to do that."
      : "The server could not do that (error " + status + "). Reload the page and try again.",
      "error");
  });

  document.addEventListener("htmx:sendError", function () {
    showToast("No connection to the server. Check your network and try again.", "error");
  });

  // Filters: leave empty fields out of the query string, so pushed URLs read like bookmarks.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id !== "job-filters") return;
    const params = event.detail.parameters;
    Object.keys(params).forEach(function (name) {
      if (params[name] === "") delete params[name];
    });
  });

  // Bulk selection: "select all on this page", and the "N selected" count in the bar.
  function rowBoxes() { return document.querySelectorAll("input[name=ids][form=bulk-form]"); }

  function updateSelection() {
    const output = document.querySelector("[data-selected-count]");
    if (!output) return;
    const boxes = Array.from(rowBoxes());
    const matching = document.querySelector("[data-select-matching]");
    const checked = boxes.filter(function (box) { return box.checked; }).length;
    const count = matching && matching.checked ? Number(matching.dataset.count) : checked;
    boxes.forEach(function (box) { box.disabled = Boolean(matching && matching.checked); });
    output.textContent = count ? count + " selected" : "Tick jobs to change their status";
    const page = document.querySelector("[data-select-page]");
    if (page) {
      page.checked = boxes.length > 0 && checked === boxes.length;
      page.indeterminate = checked > 0 && checked < boxes.length;
    }
    const apply = document.querySelector("[data-bulk-apply]");
    if (apply) apply.disabled = count === 0;
  }

  document.addEventListener("change", function (event) {
    const box = event.target;
    if (box.matches("[data-select-page]")) {
      rowBoxes().forEach(function (row) { row.checked = box.checked; });
    }
    if (box.matches("[data-select-page], [data-select-matching], input[name=ids]")) {
      updateSelection();
    }
  });

  document.addEventListener("htmx:load", updateSelection);
  document.addEventListener("DOMContentLoaded", updateSelection);
})();
