// The chat page of a Sluice gateway: one WebSocket on /v1/chat/{tenant}/{app}/{gateway}.
//
// Frames from the gateway are either the answer to a question we sent ({"status", "reason"},
// one per question, in order) or a pushed answer record ({"record", "offset"}). A streamed
// answer is many records with the same `stream-id` header, numbered by `stream-index`, the last
// one marked `stream-last-message: true`; they are shown as one message that grows. When the
// socket drops, the page reconnects with `option:position` set to the offset of the last record
// it received, so nothing is missed and nothing is shown twice.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("sluice-config").textContent);
  const $ = (id) => document.getElementById(id);
  const GOOGLE_SCRIPT = "https://accounts.google.com/gsi/client";
  const TOKEN_LABELS = {
    google: "or paste a Google ID token",
    github: "GitHub token",
    jwt: "Token (JWT)",
    http: "Token",
  };

  const state = {
    gateway: null,
    socket: null,
    wanted: false, // the user asked to be connected: reconnect when the socket drops
    opened: false, // a socket of this connection opened at least once
    attempts: 0,
    timer: null,
    lastOffset: null, // offset token of the last record received
    positions: [], // option:position of each socket opened (for the curious and the tests)
    pending: [], // question elements waiting for the gateway's status frame, in order
    streams: new Map(), // stream-id -> {element, pieces, last}
    googleToken: null,
    googleLoaded: false,
  };

  // ---- helpers ----------------------------------------------------------------------------

  function storageKey(name) {
    return `sluice:${config.tenant}/${config.application}/${state.gateway.id}:${name}`;
  }

  function remember(name, value) {
    try {
      localStorage.setItem(storageKey(name), value);
    } catch (_) {
      /* private mode: nothing is remembered */
    }
  }

  function recall(name) {
    try {
      return localStorage.getItem(storageKey(name));
    } catch (_) {
      return null;
    }
  }

  function randomId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function setStatus(kind, text) {
    const element = $("connection");
    element.dataset.state = kind;
    element.textContent = text || kind;
  }

  function notice(text) {
    const element = document.createElement("p");
    element.className = "notice";
    element.textContent = text;
    $("conversation").appendChild(element);
    scrollDown();
  }

  function addMessage(kind, text) {
    const element = document.createElement("div");
    element.className = `message ${kind}`;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    element.appendChild(body);
    $("conversation").appendChild(element);
    scrollDown();
    return element;
  }

  function scrollDown() {
    const conversation = $("conversation");
    conversation.scrollTop = conversation.scrollHeight;
  }

  function asText(value) {
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }

  function claimsOf(idToken) {
    try {
      const part = idToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (_) {
      return {};
    }
  }

  // ---- the set-up panel -------------------------------------------------------------------

  function chooseGateway(id) {
    disconnect();
    state.gateway = config.gateways.find((g) => g.id === id) || config.gateways[0];
    state.lastOffset = null;
    state.streams.clear();
    state.pending = [];
    $("conversation").replaceChildren();
    renderParameters();
    renderSignIn();
    if (!state.gateway.authentication) connectNow();
  }

  function renderParameters() {
    const box = $("parameters");
    box.replaceChildren();
    for (const name of state.gateway.parameters) {
      const label = document.createElement("label");
      label.textContent = name;
      const input = document.createElement("input");
      input.id = `param-${name}`;
      input.dataset.parameter = name;
      input.value = recall(`param:${name}`) || (/session/i.test(name) ? randomId() : "");
      label.appendChild(input);
      box.appendChild(label);
    }
  }

  function renderSignIn() {
    const auth = state.gateway.authentication;
    $("google").hidden = true;
    $("token-field").hidden = !auth;
    $("test-field").hidden = !(auth && auth.testMode);
    $("who").textContent = auth ? "" : "This gateway needs no sign-in.";
    state.googleToken = null;
    if (!auth) return;
    $("token-label").textContent = TOKEN_LABELS[auth.provider] || "Token";
    if (auth.provider === "google" && auth.googleClientId) {
      $("google").hidden = false;
      loadGoogle(auth.googleClientId);
    }
  }

  function loadGoogle(clientId) {
    const start = () => {
      window.google.accounts.id.initialize({
        client_id: clientId,
        callback: (response) => {
          state.googleToken = response.credential;
          const claims = claimsOf(response.credential);
          $("who").textContent = `Signed in as ${claims.email || claims.name || claims.sub}`;
        },
      });
      window.google.accounts.id.renderButton($("google-button"), {
        theme: "outline",
        size: "medium",
      });
    };
    if (window.google && window.google.accounts) return start();
    if (state.googleLoaded) return;
    state.googleLoaded = true;
    const script = document.createElement("script");
    script.src = GOOGLE_SCRIPT;
    script.async = true;
    script.onload = start;
    script.onerror = () => {
      $("google-note").textContent = "Google sign-in could not be loaded (offline?).";
    };
    document.head.appendChild(script);
  }

  // ---- the socket ---------------------------------------------------------------------------

  function socketUrl() {
    const gateway = state.gateway;
    const query = new URLSearchParams();
    for (const input of $("parameters").querySelectorAll("input")) {
      query.append(`param:${input.dataset.parameter}`, input.value.trim());
    }
    if (state.lastOffset) query.append("option:position", state.lastOffset);
    const test = $("test-credentials").value.trim();
    if (gateway.authentication && test) query.append("test-credentials", test);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const path = [config.tenant, config.application, gateway.id].map(encodeURIComponent).join("/");
    return `${scheme}://${location.host}/v1/chat/${path}?${query}`;
  }

  function bearerToken() {
    const auth = state.gateway.authentication;
    if (!auth || $("test-credentials").value.trim()) return null;
    return state.googleToken || $("token").value.trim() || null;
  }

  function openSocket() {
    const url = socketUrl();
    const token = bearerToken();
    // A browser cannot set an Authorization header on a WebSocket: the token travels as the
    // subprotocol pair ("bearer", token), which keeps it out of URLs and access logs. A token
    // with characters a subprotocol cannot hold goes in the credentials parameter instead.
    try {
      return token ? new WebSocket(url, ["bearer", token]) : new WebSocket(url);
    } catch (_) {
      return new WebSocket(`${url}&credentials=${encodeURIComponent(token)}`);
    }
  }

  function connectNow() {
    const auth = state.gateway.authentication;
    if (auth && !bearerToken() && !$("test-credentials").value.trim()) {
      setStatus("error", "sign in first");
      return;
    }
    for (const input of $("parameters").querySelectorAll("input")) {
      if (!input.value.trim()) {
        setStatus("error", `${input.dataset.parameter} is required`);
        return;
      }
      remember(`param:${input.dataset.parameter}`, input.value.trim());
    }
    state.wanted = true;
    state.opened = false;
    state.attempts = 0;
    connect();
  }

  function connect() {
    clearTimeout(state.timer);
    setStatus("connecting", "connecting…");
    const socket = openSocket();
    state.socket = socket;
    state.positions.push(state.lastOffset || "latest");
    socket.onopen = () => {
      if (socket !== state.socket) return;
      state.opened = true;
      state.attempts = 0;
      setStatus("online", "connected");
      if ($("test-credentials").value.trim()) $("who").textContent = "Signed in with test credentials.";
      enableComposer(true);
      $("connect").hidden = true;
      $("disconnect").hidden = false;
    };
    socket.onmessage = (event) => {
      if (socket === state.socket) receive(event.data);
    };
    socket.onclose = (event) => {
      if (socket === state.socket) closed(event);
    };
  }

  function closed(event) {
    state.socket = null;
    enableComposer(false);
    for (const question of state.pending.splice(0)) {
      question.dataset.state = "unconfirmed";
    }
    if (!state.wanted) {
      setStatus("offline");
      showConnectButton();
      return;
    }
    if (event.code === 1008 && /expired/i.test(event.reason)) {
      state.wanted = false;
      setStatus("error", "credentials expired: sign in again");
      showConnectButton();
      return;
    }
    if (!state.opened) {
      // Refused before it opened: a wrong parameter or credentials, or no gateway. The
      // browser hides the gateway's answer; `sluice gateway chat` shows it.
      state.wanted = false;
      setStatus("error", "the gateway refused the connection: check parameters and sign-in");
      showConnectButton();
      return;
    }
    const delay = Math.min(10000, 500 * 2 ** state.attempts);
    state.attempts += 1;
    setStatus("connecting", `reconnecting in ${Math.round(delay / 100) / 10} s…`);
    state.timer = setTimeout(connect, delay);
  }

  function disconnect() {
    state.wanted = false;
    clearTimeout(state.timer);
    const socket = state.socket;
    state.socket = null;
    if (socket) socket.close(1000, "bye");
    enableComposer(false);
    setStatus("offline");
    showConnectButton();
  }

  function showConnectButton() {
    $("connect").hidden = false;
    $("disconnect").hidden = true;
  }

  function enableComposer(enabled) {
    $("message").disabled = !enabled;
    $("send").disabled = !enabled;
    if (enabled) $("message").focus();
  }

  // ---- frames -------------------------------------------------------------------------------

  function receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (_) {
      return;
    }
    if (frame && typeof frame.record === "object" && frame.record !== null) {
      if (frame.offset) state.lastOffset = frame.offset;
      showRecord(frame.record);
    } else if (frame && "status" in frame) {
      const question = state.pending.shift();
      if (!question) return;
      if (frame.status === "OK") {
        question.dataset.state = "sent";
      } else {
        question.dataset.state = "refused";
        question.classList.add("refused");
        const error = document.createElement("span");
        error.className = "error";
        error.textContent = `${frame.status}: ${frame.reason}`;
        question.appendChild(error);
      }
    }
  }

  function showRecord(record) {
    const headers = record.headers || {};
    const text = asText(record.value);
    const streamId = headers["stream-id"];
    if (!streamId) {
      addMessage("answer", text).dataset.complete = "true";
      return;
    }
    let stream = state.streams.get(streamId);
    if (!stream) {
      const element = addMessage("answer streaming", "");
      element.dataset.streamId = streamId;
      element.dataset.complete = "false";
      stream = { element, pieces: [], last: null };
      state.streams.set(streamId, stream);
    }
    const index = Number.parseInt(headers["stream-index"] || "0", 10) || 0;
    stream.pieces[index] = text;
    if (String(headers["stream-last-message"]).toLowerCase() === "true") stream.last = index;
    renderStream(stream);
  }

  function renderStream(stream) {
    // Pieces are shown in stream-index order, up to the first one still missing.
    let text = "";
    let count = 0;
    while (count < stream.pieces.length && stream.pieces[count] !== undefined) {
      text += stream.pieces[count];
      count += 1;
    }
    stream.element.querySelector(".text").textContent = text;
    stream.element.dataset.pieces = String(count);
    if (stream.last !== null && count > stream.last) {
      stream.element.classList.remove("streaming");
      stream.element.dataset.complete = "true";
    }
    scrollDown();
  }

  function send(event) {
    event.preventDefault();
    const input = $("message");
    const text = input.value.trim();
    const socket = state.socket;
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ value: text }));
    const question = addMessage("question", text);
    question.dataset.state = "pending";
    state.pending.push(question);
    input.value = "";
  }

  // ---- start --------------------------------------------------------------------------------

  $("app-name").textContent = `${config.tenant}/${config.application}`;
  const select = $("gateway");
  for (const gateway of config.gateways) {
    const option = document.createElement("option");
    option.value = gateway.id;
    option.textContent = gateway.authentication
      ? `${gateway.id} (${gateway.authentication.provider} sign-in)`
      : gateway.id;
    select.appendChild(option);
  }
  const wanted = new URLSearchParams(location.search).get("gateway");
  if (wanted && config.gateways.some((g) => g.id === wanted)) select.value = wanted;
  select.addEventListener("change", () => chooseGateway(select.value));
  $("connect").addEventListener("click", connectNow);
  $("disconnect").addEventListener("click", disconnect);
  $("composer").addEventListener("submit", send);
  $("test-credentials").addEventListener("keydown", (event) => {
    if (event.key === "Enter") connectNow();
  });
  $("token").addEventListener("keydown", (event) => {
    if (event.key === "Enter") connectNow();
  });

  // For the curious (and the browser test): the page's state, and a way to drop the socket
  // the way a flaky network would, to watch it resume from the last offset.
  window.sluiceChat = {
    state,
    dropConnection() {
      if (state.socket) state.socket.close(4000, "dropped on purpose");
    },
  };

  chooseGateway(select.value);
})();
