// rollforge review: keyboard shortcuts, "show all" for long texts, and the list row to come back to.
// Everything works without it, except the shortcuts and the focus on that row. Text fetched from the
// server is inserted with textContent only, never as HTML.
(function () {
  "use strict";

  var submitting = false;

  function typingIn(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT" || el.tagName === "SELECT" || el.isContentEditable);
  }

  function toggleHelp(show) {
    var help = document.getElementById("help");
    if (help) help.hidden = show === undefined ? !help.hidden : !show;
  }

  function moveRow(step) {
    var rows = Array.prototype.slice.call(document.querySelectorAll("a[data-row]"));
    if (!rows.length) return;
    var at = rows.indexOf(document.activeElement);
    var next = at < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(Math.max(at + step, 0), rows.length - 1);
    rows[next].focus();
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (typingIn(ev.target)) {
      if (ev.key === "Escape") ev.target.blur();
      return; // typing a note never triggers a shortcut
    }
    if (ev.key === "?") { toggleHelp(); ev.preventDefault(); return; }
    if (ev.key === "Escape") { toggleHelp(false); return; }
    if (ev.key === "e") { toggleReasoning(); return; }
    var focus = document.querySelector('[data-key-focus="' + ev.key + '"]');
    if (focus) { focus.focus(); ev.preventDefault(); return; }
    var target = document.querySelector('[data-key="' + ev.key + '"]');
    if (target) {
      if (target.tagName === "BUTTON") {
        if (submitting) return; // one label per page: a double press must not post twice
        submitting = true;
      }
      ev.preventDefault();
      target.click();
      return;
    }
    if (ev.key === "j" || ev.key === "k") moveRow(ev.key === "j" ? 1 : -1);
  }

  // Back on the list, by the "list" link (it carries #at-ID) or the browser's Back button (nothing): focus the
  // row of the rollout or pair seen last, so j/k go on from there, scrolled to the middle of the window when
  // out of view. Each item page records itself as the one seen last. No element has the id "at-ID": the
  // browser's own jump to an anchor would put the row under the top bar.
  var LAST_SEEN = "rollforge-review-last-seen";

  function restoreRow() {
    var item = document.querySelector("[data-item]");
    if (item) sessionStorage.setItem(LAST_SEEN, item.getAttribute("data-item"));
    var rows = Array.prototype.slice.call(document.querySelectorAll("a[data-row]"));
    if (!rows.length) return;
    var byId = function (id) { return rows.find(function (a) { return a.getAttribute("data-id") === id; }); };
    var hash = location.hash.indexOf("#at-") === 0 ? location.hash.slice(4) : null;
    var link = byId(sessionStorage.getItem(LAST_SEEN)) || (hash && byId(hash));
    if (!link) return;
    link.focus({ preventScroll: true });
    var box = link.closest("tr").getBoundingClientRect();
    var bar = document.querySelector(".topbar").getBoundingClientRect().bottom;
    if (box.top < bar || box.bottom > window.innerHeight) link.scrollIntoView({ block: "center" });
  }

  function toggleReasoning() {
    var all = document.querySelectorAll("details.reasoning");
    var open = Array.prototype.some.call(all, function (d) { return !d.open; });
    all.forEach(function (d) { d.open = open; });
  }

  function expand(ev) {
    var link = ev.target.closest("a[data-expand]");
    if (!link) return;
    ev.preventDefault();
    var box = link.previousElementSibling;
    link.textContent = "loading…";
    fetch(link.getAttribute("href"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status + " " + r.statusText); return r.text(); })
      .then(function (text) { box.textContent = text; link.remove(); })
      .catch(function (err) { link.textContent = "could not load the full text (" + err.message + ")"; });
  }

  document.addEventListener("keydown", onKey);
  document.addEventListener("click", expand);
  document.addEventListener("submit", function () { submitting = true; });
  // A page restored from the back-forward cache starts over: its earlier submit is long done.
  window.addEventListener("pageshow", function () { submitting = false; restoreRow(); });
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector("[data-help-toggle]");
    if (toggle) toggle.addEventListener("click", function () { toggleHelp(); });
    var help = document.getElementById("help");
    if (help) help.addEventListener("click", function (ev) { if (ev.target === help) toggleHelp(false); });
  });
})();
