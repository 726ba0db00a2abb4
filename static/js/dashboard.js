// Small progressive enhancements for the dashboard. Pages work without this file.
(function () {
  "use strict";
  // Show whether the live-activity WebSocket is connected (htmx ws extension events).
  document.addEventListener("htmx:wsOpen", function (event) {
    var el = event.target.closest("[ws-connect]");
    if (el) el.setAttribute("data-live", "connected");
  });
  document.addEventListener("htmx:wsClose", function (event) {
    var el = event.target.closest("[ws-connect]");
    if (el) el.setAttribute("data-live", "disconnected");
  });
  // Close an open <details> menu when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });
  // Auto-submit filter forms when a select or date changes (the Apply button stays for no-JS).
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-autosubmit]");
    if (form && window.htmx && event.target.matches("select, input[type=date]")) {
      window.htmx.trigger(form, "submit");
    }
  });
})();
