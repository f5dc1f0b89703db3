// Job Handler dashboard: live regions and confirmations. No framework, no build step.
//
// An element with data-live="URL" is refreshed in place: the page at URL is fetched and the
// element with the same id replaces this one. With data-events="URL" it is refreshed whenever
// that server-sent event stream says something changed; otherwise (or when the stream fails)
// every data-every milliseconds. One request at a time, none while the tab is hidden; it stops
// when the new element has no data-live (a finished job, say).
"use strict";

(function () {
  function confirmations(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  // A button with data-copy="TEXT" puts TEXT on the clipboard (a selection to copy by hand
  // where the page is not a secure context and the clipboard API is missing).
  function copy(button) {
    var text = button.getAttribute("data-copy");
    function done() {
      button.classList.add("copied");
      window.setTimeout(function () { button.classList.remove("copied"); }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(button); });
    } else { select(button); }
  }

  function select(button) {
    var target = button.previousElementSibling || button.parentNode;
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // One listener for the whole page: buttons a live region brings in work too.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (button) { copy(button); }
  });

  // Fetch the element's page and swap the element; calls done(fresh or null) when it is over.
  function load(id, url, done) {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
        var current = document.getElementById(id);
        if (fresh && current) {
          current.replaceWith(fresh);
          confirmations(fresh);
        }
        done(fresh);
      })
      .catch(function () { done(null); });
  }

  function poll(id, url, every) {
    window.setTimeout(function tick() {
      if (!document.getElementById(id)) { return; }
      if (document.hidden) { window.setTimeout(tick, every); return; }
      load(id, url, function (fresh) {
        if (!fresh || fresh.hasAttribute("data-live")) { window.setTimeout(tick, every); }
      });
    }, every);
  }

  function follow(id, url, every, events) {
    var source = new EventSource(events);
    var busy = false, again = false, finished = false;
    function update() {
      if (busy) { again = true; return; }
      busy = true;
      load(id, url, function (fresh) {
        busy = false;
        if (fresh && !fresh.hasAttribute("data-live")) {
          finished = true;
          source.close();
        } else if (again) {
          again = false;
          update();
        }
      });
    }
    source.addEventListener("open", update);  // a change between page and stream is not missed
    source.addEventListener("job", update);
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED && !finished) { poll(id, url, every); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var url = el.getAttribute("data-live");
      var every = parseInt(el.getAttribute("data-every") || "2000", 10);
      var events = el.getAttribute("data-events");
      if (events && window.EventSource) { follow(el.id, url, every, events); }
      else { poll(el.id, url, every); }
    });
    confirmations(document);
  });
}());
