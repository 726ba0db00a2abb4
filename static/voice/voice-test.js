// /voice-test: a call with the shop's receptionist from the browser, over WebSocket /ws/voice/stream/.
// Protocol (voice/browser.py): binary PCM16 frames both ways (16 kHz up; down at the rate the server's
// "hello" states), JSON control up ({"type": "text"|"mark"|"dtmf"|"stop"}) and events down ("hello",
// "mark", "clear", "transcript", "state", "metrics", "engine").
// The microphone is asked for only when the call starts; without one the call still works by typing.
(function () {
  "use strict";
  var root = document.getElementById("voice-test");
  if (!root) return;

  var $ = function (id) { return document.getElementById(id); };
  var toggle = $("call-toggle");
  var muteButton = $("mute");
  var zeroButton = $("press-zero");
  var connectionEl = $("connection");
  var stateEl = $("session-state");
  var engineEl = $("engine");
  var micStatus = $("mic-status");
  var micMeter = $("mic-level");
  var notice = $("voice-notice");
  var transcript = $("transcript");
  var form = $("text-form");
  var input = $("text-message");
  var sendButton = $("text-send");
  var metricsEl = $("metrics");

  var STATES = {
    idle: "Idle", listening: "Listening", processing: "Thinking", speaking: "Speaking",
    transferring: "Transferring to a person", ended: "Call ended",
  };
  var ENGINES = { local: "Offline (local)", openai: "OpenAI" };
  var CLOSES = {
    1000: "Call ended.",
    1011: "The server had a problem and ended the call. It is in your call log.",
    4401: "Your login has expired. Reload the page and log in again.",
    4403: "You are not a member of this shop.",
  };
  // The session's per-turn {"type": "metrics"} (voice/session.py TurnMetrics), shown in this order.
  var METRICS = [
    ["first_response_ms", "First response"],
    ["response_ms", "Last response"],
    ["asr_ms", "Recognition"],
    ["model_ms", "Thinking"],
    ["tool_ms", "Tools"],
    ["tts_ms", "Speech synthesis"],
    ["turn", "Turns"],
  ];

  var call = null; // everything that belongs to the current call

  // -- status ------------------------------------------------------------------------------------
  function setConnection(text, kind) {
    connectionEl.textContent = text;
    root.dataset.connection = kind;
  }
  function setState(state) {
    state = String(state || "").toLowerCase();
    stateEl.textContent = STATES[state] || state || "—";
    root.dataset.state = state || "idle";
  }
  function setEngine(name, reason) {
    if (!name) return;
    engineEl.textContent = (ENGINES[name] || name) + (reason ? " — " + reason : "");
  }
  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }
  function setInCall(on) {
    toggle.textContent = on ? "End call" : "Start call";
    toggle.classList.toggle("danger", on);
    zeroButton.disabled = !on;
    input.disabled = !on;
    sendButton.disabled = !on;
    muteButton.disabled = !(on && call && call.stream);
  }
  function showMetrics(event) {
    if (call && call.firstResponse == null && typeof event.response_ms === "number") {
      call.firstResponse = event.response_ms;
    }
    var values = Object.assign({}, event, { first_response_ms: call ? call.firstResponse : null });
    METRICS.forEach(function (metric) {
      var key = metric[0];
      var value = values[key];
      if (key === "asr_ms" && event.source === "text") value = null; // typed: nothing was recognised
      if (typeof value !== "number" && !document.getElementById("metric-" + key)) return;
      var dd = document.getElementById("metric-" + key);
      if (!dd) {
        var empty = $("metrics-empty");
        if (empty) empty.remove();
        var dt = document.createElement("dt");
        dt.textContent = metric[1];
        dd = document.createElement("dd");
        dd.id = "metric-" + key;
        dd.dataset.testid = "metric-" + key;
        // Keep the fixed order whatever arrives first.
        var next = null;
        for (var i = METRICS.indexOf(metric) + 1; i < METRICS.length && !next; i++) {
          var later = document.getElementById("metric-" + METRICS[i][0]);
          if (later) next = later.previousElementSibling;
        }
        metricsEl.insertBefore(dt, next);
        metricsEl.insertBefore(dd, next);
      }
      if (typeof value !== "number") dd.textContent = "—";
      else dd.textContent = /_ms$/.test(key) ? Math.round(value) + " ms" : String(value);
    });
  }

  // -- transcript --------------------------------------------------------------------------------
  var interim = {}; // role → the bubble still being written
  var typed = []; // texts typed here, shown at once; the server's echo of them is not shown twice

  function roleOf(event) {
    var who = String(event.role || event.speaker || "assistant").toLowerCase();
    return who === "caller" || who === "user" ? "caller" : "assistant";
  }
  function bubble(role, text) {
    var li = document.createElement("li");
    li.className = "bubble " + role;
    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = role === "caller" ? "You: " : "Receptionist: ";
    var said = document.createElement("span");
    said.className = "said";
    said.textContent = text;
    li.appendChild(who);
    li.appendChild(said);
    transcript.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }
  function normalise(text) { return String(text || "").trim().toLowerCase(); }
  function onTranscript(event) {
    var role = roleOf(event);
    var text = event.text || event.transcript || "";
    var final = event.final !== false && event.partial !== true;
    if (role === "caller" && final && typed.length && normalise(typed[0]) === normalise(text)) {
      typed.shift();
      return;
    }
    var li = interim[role];
    if (li) {
      li.querySelector(".said").textContent = text;
    } else {
      if (!text) return;
      li = bubble(role, text);
    }
    li.classList.toggle("pending", !final);
    interim[role] = final ? null : li;
    li.scrollIntoView({ block: "nearest" });
  }

  // -- playback: PCM16 chunks scheduled back to back; marks echoed when playback reaches them --------
  function playAudio(data) {
    if (!call || !call.ctx) return;
    var ctx = call.ctx;
    var samples = new Int16Array(data, 0, data.byteLength >> 1);
    if (!samples.length) return;
    var buffer = ctx.createBuffer(1, samples.length, call.outputRate);
    var channel = buffer.getChannelData(0);
    for (var i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    var source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    var at = Math.max(ctx.currentTime + 0.03, call.playEnd);
    source.start(at);
    call.playEnd = at + buffer.duration;
    call.sources.push(source);
    source.onended = function () {
      if (!call) return;
      var i = call.sources.indexOf(source);
      if (i >= 0) call.sources.splice(i, 1);
    };
  }
  function echoMark(name) { send({ type: "mark", name: name }); }
  function onMark(name) {
    if (!call || !call.ctx || call.playEnd <= call.ctx.currentTime) { echoMark(name); return; }
    var mark = { name: name, due: call.playEnd, timer: null };
    var check = function () {
      if (!call || call.marks.indexOf(mark) < 0) return;
      var left = mark.due - call.ctx.currentTime;
      if (left > 0.005) { mark.timer = setTimeout(check, left * 1000); return; }
      call.marks.splice(call.marks.indexOf(mark), 1);
      echoMark(mark.name);
    };
    call.marks.push(mark);
    check();
  }
  function flushPlayback() {
    // Barge-in: silence now; the marks of what was dropped are echoed at once (as Twilio does).
    if (!call) return;
    call.sources.splice(0).forEach(function (source) {
      try { source.stop(); } catch (e) { /* not started yet */ }
    });
    call.playEnd = 0;
    call.marks.splice(0).forEach(function (mark) { clearTimeout(mark.timer); echoMark(mark.name); });
  }

  // -- the socket --------------------------------------------------------------------------------
  function send(message) {
    if (call && call.ws && call.ws.readyState === WebSocket.OPEN) {
      call.ws.send(typeof message === "string" || message instanceof ArrayBuffer ? message : JSON.stringify(message));
      return true;
    }
    return false;
  }
  function onHello(hello) {
    call.hello = true;
    call.outputRate = (hello.output && hello.output.sample_rate) || 24000;
    call.inputRate = (hello.input && hello.input.sample_rate) || 16000;
    setConnection("Connected", "connected");
    setEngine(hello.engine);
    setInCall(true);
    if (call.stream) startCapture(hello.input && hello.input.frame_ms);
  }
  function onEvent(event) {
    switch (event.type) {
      case "hello": onHello(event); break;
      case "mark": onMark(event.name); break;
      case "clear": flushPlayback(); break;
      case "transcript": onTranscript(event); break;
      case "state": setState(event.state); break;
      case "engine": setEngine(event.engine || event.name, event.reason || event.fallback_reason); break;
      case "metrics": showMetrics(event); break;
      default: break; // newer servers may say more; ignore what we don't know
    }
  }
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + root.dataset.wsPath + "?shop=" + encodeURIComponent(root.dataset.shop);
    var ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    call.ws = ws;
    ws.onmessage = function (message) {
      if (!call || call.ws !== ws) return;
      if (typeof message.data === "string") {
        var event;
        try { event = JSON.parse(message.data); } catch (e) { return; }
        if (event && typeof event === "object") onEvent(event);
      } else {
        playAudio(message.data);
      }
    };
    ws.onclose = function (event) {
      if (!call || call.ws !== ws) return;
      var why = CLOSES[event.code] || (call.hello ? "Connection lost." : "Could not connect to the receptionist.");
      if (event.code !== 1000) showNotice(why);
      endCall({ drain: true, status: event.code === 1000 ? "Call ended" : "Disconnected" });
    };
  }

  // -- the microphone --------------------------------------------------------------------------
  function startCapture(frameMs) {
    var ctx = call.ctx;
    var node = new AudioWorkletNode(ctx, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { targetRate: call.inputRate, frameMs: frameMs || 20 },
    });
    var lastMeter = 0;
    node.port.onmessage = function (event) {
      if (event.data.pcm) send(event.data.pcm);
      var now = performance.now();
      if (now - lastMeter > 100) { micMeter.value = Math.min(1, event.data.level * 4); lastMeter = now; }
    };
    // A node must reach the destination to be processed; a zero gain keeps the microphone out of the speakers.
    var sink = ctx.createGain();
    sink.gain.value = 0;
    call.source.connect(node);
    node.connect(sink);
    sink.connect(ctx.destination);
    call.capture = node;
    micStatus.textContent = "On";
  }
  async function openMicrophone() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showNotice("The microphone needs a secure (HTTPS) page. You can still type what a caller would say.");
      return null;
    }
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      var reason = error && error.name === "NotAllowedError" ? "Microphone access was blocked." : "No microphone was found.";
      showNotice(reason + " You can still type what a caller would say.");
      return null;
    }
  }

  // -- start and end -----------------------------------------------------------------------------
  async function startCall() {
    toggle.disabled = true;
    showNotice("");
    transcript.textContent = "";
    interim = {};
    typed = [];
    setConnection("Connecting…", "connecting");
    setState("");
    // Created inside the click: browsers only let a page play sound after a user gesture.
    var Context = window.AudioContext || window.webkitAudioContext;
    call = { ctx: new Context({ latencyHint: "interactive" }), sources: [], marks: [], playEnd: 0, outputRate: 24000 };
    var current = call;
    try {
      await current.ctx.resume();
      var stream = await openMicrophone();
      if (call !== current) { if (stream) stream.getTracks().forEach(function (t) { t.stop(); }); return; }
      if (stream) {
        current.stream = stream;
        current.source = current.ctx.createMediaStreamSource(stream);
        await current.ctx.audioWorklet.addModule(root.dataset.worklet);
        micStatus.textContent = "Allowed";
      } else {
        micStatus.textContent = "Off";
      }
      if (call !== current) return;
      connect();
    } catch (error) {
      showNotice("Could not start the call: " + (error && error.message ? error.message : error));
      endCall({ drain: false, status: "Not connected" });
    } finally {
      toggle.disabled = false;
    }
  }
  function endCall(options) {
    var ending = call;
    if (!ending) return;
    call = null;
    setInCall(false);
    setConnection(options.status || "Call ended", "closed");
    if (!options.status || options.status === "Call ended") setState("ended");
    micStatus.textContent = "Off";
    micMeter.value = 0;
    muteButton.setAttribute("aria-pressed", "false");
    muteButton.textContent = "Mute microphone";
    if (ending.ws && ending.ws.readyState <= WebSocket.OPEN) {
      if (ending.ws.readyState === WebSocket.OPEN) ending.ws.send(JSON.stringify({ type: "stop" }));
      ending.ws.close(1000);
    }
    if (ending.capture) { ending.capture.port.postMessage({ type: "stop" }); ending.capture.disconnect(); }
    if (ending.stream) ending.stream.getTracks().forEach(function (t) { t.stop(); });
    ending.marks.forEach(function (mark) { clearTimeout(mark.timer); });
    // The server hung up: let its last words (the goodbye) finish playing. The caller hung up: silence now.
    var left = options.drain ? Math.max(0, ending.playEnd - ending.ctx.currentTime) : 0;
    if (!options.drain) ending.sources.forEach(function (s) { try { s.stop(); } catch (e) { /* idle */ } });
    setTimeout(function () { ending.ctx.close(); }, left * 1000 + 100);
  }

  toggle.addEventListener("click", function () {
    if (call) endCall({ drain: false, status: "Call ended" });
    else startCall();
  });
  muteButton.addEventListener("click", function () {
    if (!call || !call.capture) return;
    var muted = muteButton.getAttribute("aria-pressed") !== "true";
    call.capture.port.postMessage({ type: "mute", muted: muted });
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.textContent = muted ? "Unmute microphone" : "Mute microphone";
    micStatus.textContent = muted ? "Muted" : "On";
  });
  zeroButton.addEventListener("click", function () {
    if (send({ type: "dtmf", digit: "0" })) bubble("caller", "(pressed 0)");
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (send({ type: "text", text: text })) {
      typed = typed.slice(-4).concat([text]);
      bubble("caller", text).classList.add("typed");
      input.value = "";
    }
    input.focus();
  });
  window.addEventListener("pagehide", function () { if (call) endCall({ drain: false }); });
})();
