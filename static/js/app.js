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
    // After a refused save, the first field to fix (or to choose for) rather than the top.
    const first = dialog.querySelector(
      ":is(input, select, textarea)[aria-invalid=true], .conflict input[type=radio]"
    ) || dialog.querySelector("[autofocus], input:not([type=hidden]), select, textarea, button");
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

  // History: a request whose URL is the page's own (Enter in the search box after the typed
  // search already ran, then the Filter button) replaces the entry instead of pushing the
  // same URL again, so Back leaves the filters in one step per change.
  function sameQuery(a, b) {
    const sorted = function (search) {
      return Array.from(new URLSearchParams(search)).map(String).sort().join("&");
    };
    return a.pathname === b.pathname && sorted(a.search) === sorted(b.search);
  }

  document.body.addEventListener("htmx:beforeHistoryUpdate", function (event) {
    const update = event.detail.history;
    if (update.type !== "push") return;
    if (sameQuery(new URL(update.path, window.location.href), window.location)) {
      update.type = "replace";
    }
  });

  // Bulk selection. Ticked jobs stay ticked across pages and back (kept in sessionStorage as
  // {id: status}); "Select all N matching" selects the filter itself. The count, Clear, the
  // action's own field, and a status menu offering only statuses some selected job may take.
  const STORE = "jobsite:selected-jobs";

  function stored() {
    try { return JSON.parse(sessionStorage.getItem(STORE) || "{}"); } catch (e) { return {}; }
  }

  function store(selected) {
    try { sessionStorage.setItem(STORE, JSON.stringify(selected)); } catch (e) { /* private mode */ }
  }

  function rowBoxes() { return document.querySelectorAll("input[name=ids][form=bulk-form]"); }

  function remember(box) {
    const selected = stored();
    if (box.checked) selected[box.value] = box.dataset.status || "";
    else delete selected[box.value];
    store(selected);
  }

  function updateSelection() {
    const output = document.querySelector("[data-selected-count]");
    if (!output) return;
    const selected = stored();
    const boxes = Array.from(rowBoxes());
    boxes.forEach(function (box) {
      if (box.value in selected) box.checked = true;
      else if (box.checked) remember(box);  // ticked without JavaScript's help (back button)
    });
    const ids = Object.keys(stored());
    const matching = document.querySelector("[data-select-matching]");
    const all = Boolean(matching && matching.checked);
    boxes.forEach(function (box) { box.disabled = all; });
    output.textContent = all
      ? "All " + (matching.dataset.count ? matching.dataset.count + " " : "") + "matching selected"
      : ids.length ? ids.length + " selected" : "Tick jobs to change them";
    const clear = document.querySelector("[data-clear-selection]");
    if (clear) clear.hidden = all || ids.length === 0;
    const checked = boxes.filter(function (box) { return box.checked; }).length;
    const page = document.querySelector("[data-select-page]");
    if (page) {
      page.checked = boxes.length > 0 && checked === boxes.length;
      page.indeterminate = checked > 0 && checked < boxes.length;
    }
    const apply = document.querySelector("[data-bulk-apply]");
    if (apply) apply.disabled = !all && ids.length === 0;
    offerStatuses(all ? null : Object.values(stored()));
    showActionField();
  }

  // A status option names (data-from) the statuses a job may take it from.
  function offerStatuses(statuses) {
    const select = document.querySelector("#bulk-form select[name=status]");
    if (!select) return;
    Array.from(select.options).forEach(function (option) {
      if (!option.value) return;
      const from = (option.dataset.from || "").split(" ");
      const offered = !statuses || statuses.length === 0 || statuses.some(function (status) {
        return status === "" || from.indexOf(status) >= 0;
      });
      option.hidden = !offered;
      option.disabled = !offered;
      if (!offered && option.selected) select.value = "";
    });
  }

  function showActionField() {
    const action = document.querySelector("[data-bulk-action]");
    if (!action) return;
    document.querySelectorAll("[data-bulk-field]").forEach(function (field) {
      field.hidden = field.dataset.bulkField !== action.value;
    });
  }

  function clearSelection() {
    store({});
    rowBoxes().forEach(function (box) { box.checked = false; });
    const matching = document.querySelector("[data-select-matching]");
    if (matching) matching.checked = false;
    updateSelection();
  }

  document.addEventListener("change", function (event) {
    const box = event.target;
    if (box.matches("[data-select-page]")) {
      rowBoxes().forEach(function (row) { row.checked = box.checked; remember(row); });
    } else if (box.matches("input[name=ids][form=bulk-form]")) {
      remember(box);
    }
    if (box.matches("[data-select-page], [data-select-matching], input[name=ids], [data-bulk-action]")) {
      updateSelection();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-clear-selection]")) clearSelection();
    if (event.target.closest("[data-start-bulk-run]")) store({});
  });

  // The ticked jobs of other pages go along with this page's.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id !== "bulk-form") return;
    const matching = document.querySelector("[data-select-matching]");
    if (matching && matching.checked) return;
    const onPage = event.detail.formData.getAll("ids");
    Object.keys(stored()).forEach(function (id) {
      if (onPage.indexOf(id) < 0) event.detail.formData.append("ids", id);
    });
  });

  // After an all-or-nothing change fails, mark the rows of the jobs that blocked it.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "bulk-result") return;
    const result = event.detail.target.querySelector("[data-blocked-ids]");
    const blocked = result ? result.dataset.blockedIds.split(" ") : [];
    document.querySelectorAll("tr.bulk-blocked").forEach(function (row) {
      row.classList.remove("bulk-blocked");
    });
    blocked.forEach(function (id) {
      const row = id && document.getElementById("job-" + id);
      if (row) row.classList.add("bulk-blocked");
    });
  });

  document.body.addEventListener("jobsite:selection-done", clearSelection);

  document.addEventListener("htmx:load", updateSelection);
  document.addEventListener("DOMContentLoaded", updateSelection);
})();
