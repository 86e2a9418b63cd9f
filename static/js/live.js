// Live pages (docs/live.md): an open jobs list, a job's page, its edit dialog and the imports
// list follow other writers' changes without a reload, and finished runs show as toasts.
// Each part polls its endpoint (jobs/live.py, imports/views.py) only while the tab is visible;
// an idle poll is answered 204 with no body. Pages without these parts poll nothing.
(function () {
  "use strict";

  const JOBS_INTERVAL = 5000;
  const IMPORTS_INTERVAL = 2000;
  const MARK_MS = 4000;       // how long a changed row or section stays marked
  const TOAST_MS = 20000;     // how long a run's toast stays unless hovered or focused
  const PAUSE_STORE = "jobsite:live-paused";

  const body = document.body;
  let listToken = body.dataset.liveToken || "";
  let listBase = listToken;   // new jobs are those created after the table was shown
  let listTable = null;
  let jobToken = listToken;
  let editToken = listToken;

  function stopped(response) {
    // A poll redirected to the login page: the session ended. Go there as a whole page.
    const loginPath = body.dataset.loginUrl;
    if (loginPath && response.redirected && new URL(response.url).pathname === loginPath) {
      const here = window.location.pathname + window.location.search;
      window.location.assign(loginPath + "?next=" + encodeURIComponent(here));
      return true;
    }
    return false;
  }

  // GET `url` with `params`; resolves to the JSON answer, or null for 204 and failures.
  function poll(url, params) {
    const query = new URLSearchParams(params).toString();
    return fetch(url + "?" + query, {
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
    }).then(function (response) {
      if (stopped(response) || response.status !== 200) return null;
      return response.json();
    }).catch(function () { return null; });
  }

  // Run `task` (returning a promise) every `ms` while the tab is visible, never twice at once.
  function every(ms, task) {
    let busy = false;
    function run() {
      if (busy || document.hidden) return;
      busy = true;
      Promise.resolve(task()).finally(function () { busy = false; });
    }
    setInterval(run, ms);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) run(); });
  }

  function fromHTML(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function mark(element) {
    element.classList.add("live-changed");
    setTimeout(function () { element.classList.remove("live-changed"); }, MARK_MS);
  }

  // Put `fresh` where `old` is, keeping the ticked box and the focus of the old one.
  function swapIn(old, fresh) {
    const box = old.querySelector("input[name=ids]");
    const newBox = fresh.querySelector("input[name=ids]");
    if (box && newBox) newBox.checked = box.checked;
    const focused = old.contains(document.activeElement) ? document.activeElement.id : "";
    old.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus();
    }
    mark(fresh);
  }

  // --- Toasts of finished runs -----------------------------------------------------------

  function dismissLater(toast) {
    setTimeout(function check() {
      if (!toast.isConnected) return;
      if (toast.matches(":hover, :focus-within")) setTimeout(check, 2000);
      else toast.remove();
    }, TOAST_MS);
  }

  function showToasts(toasts) {
    const box = document.getElementById("toasts");
    if (!box || !toasts) return;
    toasts.forEach(function (item) {
      const toast = document.createElement("div");
      toast.className = "toast toast-run" + (item.level === "error" ? " toast-error" : "");
      toast.dataset.liveToast = "";
      const link = document.createElement("a");
      link.href = item.url;
      link.textContent = item.message;
      const dismiss = document.createElement("button");
      dismiss.type = "button";
      dismiss.className = "toast-dismiss";
      dismiss.dataset.dismissToast = "";
      dismiss.setAttribute("aria-label", "Dismiss");
      dismiss.textContent = "×";
      toast.append(link, " ", dismiss);
      box.appendChild(toast);
      dismissLater(toast);
    });
  }

  document.addEventListener("click", function (event) {
    const dismiss = event.target.closest("[data-dismiss-toast]");
    if (dismiss) dismiss.closest(".toast").remove();
  });

  // --- The jobs list -------------------------------------------------------------------

  function listControls() {
    let controls = document.querySelector("[data-live-controls]");
    if (controls) return controls;
    controls = document.createElement("div");
    controls.className = "live-controls";
    controls.dataset.liveControls = "";
    const news = document.createElement("p");
    news.className = "live-news";
    news.setAttribute("role", "status");
    news.setAttribute("aria-live", "polite");
    const label = document.createElement("span");
    label.dataset.liveNewLabel = "";
    const show = document.createElement("button");
    show.type = "button";
    show.className = "secondary outline live-show";
    show.dataset.liveShow = "";
    show.textContent = "show";
    show.hidden = true;
    news.append(label, " ", show);
    const pause = document.createElement("button");
    pause.type = "button";
    pause.className = "secondary outline live-pause";
    pause.dataset.livePause = "";
    pause.textContent = "Pause live updates";
    pause.setAttribute("aria-pressed", String(paused()));
    controls.append(news, pause);
    const table = document.getElementById("job-table");
    table.parentNode.insertBefore(controls, table);
    return controls;
  }

  function paused() {
    try { return sessionStorage.getItem(PAUSE_STORE) === "1"; } catch (e) { return false; }
  }

  function setPaused(value) {
    try { sessionStorage.setItem(PAUSE_STORE, value ? "1" : "0"); } catch (e) { /* private mode */ }
    const pause = document.querySelector("[data-live-pause]");
    if (pause) pause.setAttribute("aria-pressed", String(value));
  }

  function announceNew(count, label) {
    const controls = listControls();
    controls.querySelector("[data-live-new-label]").textContent = count ? label + " —" : "";
    controls.querySelector("[data-live-show]").hidden = !count;
  }

  // A table shown anew (a filter, a page, "show"): count new jobs from here.
  function tableShown() {
    listTable = document.getElementById("job-table");
    listBase = listToken;
    announceNew(0, "");
  }

  function showNewJobs() {
    const params = new URLSearchParams(window.location.search);
    params.delete("cursor");
    params.delete("page");
    const query = params.toString();
    const url = window.location.pathname + (query ? "?" + query : "");
    if (url !== window.location.pathname + window.location.search) {
      window.history.pushState({}, "", url);
    }
    window.htmx.ajax("GET", url, { target: "#job-table", swap: "outerHTML" });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-live-show]")) showNewJobs();
    if (event.target.closest("[data-live-pause]")) {
      setPaused(!paused());
      if (!paused()) pollList();
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    const table = document.getElementById("job-table");
    if (table && table !== listTable && table.hasAttribute("data-live-list")) tableShown();
  });

  function pollList() {
    const table = document.getElementById("job-table");
    if (!table || !table.hasAttribute("data-live-list") || !listToken || paused()) return null;
    if (table !== listTable) tableShown();
    const rows = Array.from(table.querySelectorAll("tbody tr[data-live-job]"));
    const params = {
      since: listToken,
      base: listBase,
      jobs: rows.map(function (row) {
        return row.dataset.liveJob + ":" + row.dataset.version;
      }).join(","),
      query: window.location.search.replace(/^\?/, ""),
    };
    return poll(body.dataset.liveUrl, params).then(function (answer) {
      if (!answer || paused() || document.getElementById("job-table") !== table) return;
      listToken = answer.token;
      Object.keys(answer.rows).forEach(function (id) {
        const row = document.getElementById("job-" + id);
        const fresh = fromHTML(answer.rows[id]);
        if (row && fresh) swapIn(row, fresh);
      });
      answer.gone.forEach(function (id) {
        const row = document.getElementById("job-" + id);
        if (row) {
          row.classList.add("live-gone");
          row.removeAttribute("data-live-job");
        }
      });
      announceNew(answer.new, answer.new_label);
      showToasts(answer.toasts);
    });
  }

  // --- A job's page and its edit dialog -------------------------------------------------

  function jobUrl(id) {
    return body.dataset.liveJobUrl.replace("/0/", "/" + id + "/");
  }

  function pollJobPage() {
    const section = document.querySelector("#job-live[data-live-job]");
    if (!section || !jobToken) return null;
    const params = { since: jobToken, version: section.dataset.version, view: "detail" };
    return poll(jobUrl(section.dataset.liveJob), params).then(function (answer) {
      if (!answer) return;
      jobToken = answer.token;
      showToasts(answer.toasts);
      const current = document.getElementById("job-live");
      const fresh = answer.html && fromHTML(answer.html);
      if (current && fresh) swapIn(current, fresh);
    });
  }

  function pollEditDialog() {
    const card = document.querySelector("article.modal-card[data-live-job]");
    if (!card || !editToken) return null;
    const params = { since: editToken, version: card.dataset.version, view: "edit" };
    return poll(jobUrl(card.dataset.liveJob), params).then(function (answer) {
      if (!answer) return;
      editToken = answer.token;
      showToasts(answer.toasts);
      if (!answer.html || !card.isConnected) return;
      const old = card.querySelector("[data-live-notice]");
      if (old && old.dataset.version === String(answer.version)) return;
      const notice = fromHTML(answer.html);
      if (old) old.replaceWith(notice);
      else card.insertBefore(notice, card.firstElementChild);
    });
  }

  // A dialog opened later starts from the version it shows: only changes after it count.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "modal") editToken = listToken || editToken;
  });

  // --- The imports list: one poll for every running import on the page ------------------

  function pollImports() {
    const rows = Array.from(document.querySelectorAll("tr[data-live-import]"));
    if (!rows.length || !body.dataset.liveImportsUrl) return null;
    const runs = rows.map(function (row) {
      return row.dataset.liveImport + ":" + row.dataset.version;
    }).join(",");
    return poll(body.dataset.liveImportsUrl, { runs: runs }).then(function (answer) {
      if (!answer) return;
      Object.keys(answer.rows).forEach(function (id) {
        const row = document.getElementById("import-row-" + id);
        const fresh = fromHTML(answer.rows[id]);
        if (row && fresh) swapIn(row, fresh);
      });
      showToasts(answer.toasts);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-toast]").forEach(dismissLater);
    if (document.querySelector("[data-live-list]")) listControls();
    every(JOBS_INTERVAL, function () {
      return Promise.all([pollList(), pollJobPage(), pollEditDialog()]);
    });
    every(IMPORTS_INTERVAL, pollImports);
  });
})();
