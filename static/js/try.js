// "Try it": a chat with the shop's receptionist through the public text API, POST /api/voice/chat
// ({"shop", "message", "session"} → {"reply", "session", "intent", "tools", "transfer", "end"}).
(function () {
  "use strict";
  var root = document.getElementById("chat");
  if (!root) return;
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-message");
  var log = document.getElementById("chat-log");
  var meta = document.getElementById("chat-meta");
  var session = null;

  function bubble(role, text) {
    var li = document.createElement("li");
    li.className = "bubble " + role;
    li.textContent = text;
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var message = input.value.trim();
    if (!message) return;
    bubble("caller", message);
    input.value = "";
    var pending = bubble("assistant pending", "…");
    fetch(root.dataset.endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
      body: JSON.stringify({ shop: root.dataset.shop, message: message, session: session }),
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (result) {
        pending.classList.remove("pending");
        if (!result.ok) {
          pending.classList.add("error");
          pending.textContent = (result.data && (result.data.error || result.data.detail)) || "Something went wrong.";
          return;
        }
        var data = result.data;
        session = data.session || session;
        pending.textContent = data.reply;
        var tools = (data.tools || []).map(function (t) { return t.name + (t.ok === false ? " (failed)" : ""); });
        meta.textContent =
          "Intent: " + (data.intent || "—") +
          (tools.length ? " · Tools: " + tools.join(", ") : "") +
          (data.transfer ? " · Transferring to a person" : "") +
          (data.end ? " · Call ended" : "");
        if (data.end) { session = null; }
      })
      .catch(function () {
        pending.classList.remove("pending");
        pending.classList.add("error");
        pending.textContent = "Could not reach the receptionist. Check your connection and try again.";
      });
  });

  document.getElementById("chat-reset").addEventListener("click", function () {
    session = null;
    while (log.children.length > 1) log.removeChild(log.lastChild);
    meta.textContent = "";
    input.focus();
  });
})();
