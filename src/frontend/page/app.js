// The chat page: one WebSocket to /ws speaking PROTOCOL.md, reconnecting on its own.
// Server HTML is rebuilt from a whitelist (coloured <span>s only), so no user text can become markup.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  state: $("state"), me: $("me"), logout: $("logout"),
  loginPanel: $("login-panel"), loginForm: $("login-form"), name: $("name"), loginError: $("login-error"),
  motd: $("motd"), chatPanel: $("chat-panel"), usersToggle: $("users-toggle"), users: $("users"),
  count: $("count"), log: $("log"),
  sendForm: $("send-form"), target: $("target"), text: $("text"),
};

const LOG_LIMIT = 1000;
let socket = null;
let myName = null;       // logged in as
let pendingName = null;  // login sent, not yet confirmed
let wantName = null;     // log in again with this name after a reconnect
let retry = 0;
let retryTimer = null;
// Reconnecting after a close while logged in: the chat stays on screen, and a short note says
// when it is back, under the same name. Past this many failed tries the login panel comes back.
let reconnecting = false;
const QUIET_TRIES = 12;
// Who is online, oldest login first: fetched once with /userlist after logging in, then kept
// up to date from the login and logout lines every user receives (asking again on each of them
// would make a login storm cost the server users x users names).
let users = [];
// One entry per /userlist sent on this connection, oldest first: whether its answer is shown in
// the log (typed by the user) or only updates the list (the page's own request after login).
let listsAsked = [];
// On a narrow screen the user list folds away behind its heading.
const narrow = window.matchMedia("(max-width: 640px)");
const wideHint = ui.text.placeholder;

function setState(kind, label) {
  ui.state.className = "state " + kind;
  ui.state.textContent = label;
}

function connect() {
  clearTimeout(retryTimer);
  setState("connecting", retry ? "reconnecting…" : "connecting…");
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const ws = new WebSocket(url);
  socket = ws;
  listsAsked = [];
  // The server's greeting, if it sends one, is the first frame of a connection.
  let first = true;
  ws.onopen = () => {
    retry = 0;
    setState("online", "connected");
    if (wantName) login(wantName);
  };
  ws.onmessage = (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch { return; }
    const greeting = first && isGreeting(data);
    first = false;
    if (greeting) greet(data); else receive(data);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    if (myName) {
      wantName = myName;
      reconnecting = true;
    }
    // A server restart closes with 1012 and is back at once: the first try comes quickly, and
    // while the chat stays on screen the tries stay a second apart at most.
    const delay = retry === 0 ? 100 : Math.min(reconnecting ? 1000 : 10000, 250 * 2 ** retry);
    retry++;
    if (reconnecting && retry <= QUIET_TRIES) {
      setState("connecting", "reconnecting…");
    } else {
      reconnecting = false;
      showLoggedOut();
      setState("offline", "offline, retrying in " + Math.ceil(delay / 1000) + " s");
    }
    retryTimer = setTimeout(connect, delay);
  };
}

function send(line) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(line);
    return true;
  }
  notice("not connected; your message was not sent");
  return false;
}

function login(name) {
  pendingName = name;
  ui.loginError.textContent = "";
  send("login " + name);
}

// The page itself never says `whoami`, `userlist` or `help` before login, so a first frame that
// is an `[INFO] - ` line can only be the greeting.
function isGreeting(data) {
  return data.action === "response" && String(data.text ?? "").startsWith("[INFO] - ");
}

function greet(data) {
  ui.motd.textContent = String(data.text).slice("[INFO] - ".length);
  ui.motd.hidden = false;
  append(String(data.message ?? ""));
}

function receive(data) {
  if (data.action === "list" && Array.isArray(data.message)) {
    users = data.message.map(String);
    showUsers(users);
    // Typed by the user: shown as telnet shows it.
    if (listsAsked.shift()) appendText("[" + users.map((name) => `'${name}'`).join(", ") + "]");
    return;
  }
  if (data.action !== "response") return;
  const text = String(data.text ?? "");
  const html = String(data.message ?? "");

  const system = /^\[SYSTEM INFO\] - \[(.+)\] (login to chat|logout from chat)\.$/.exec(text);
  if (system) {
    const [, who, what] = system;
    if (what === "login to chat" && who === pendingName) {
      pendingName = null;
      wantName = null;
      if (reconnecting) {
        // Back under the same name: a short note instead of the login line.
        reconnecting = false;
        myName = who;
        if (send("/userlist")) listsAsked.push(false);
        notice("reconnected");
        return;
      }
      showLoggedIn(who);
    } else if (what === "logout from chat" && who === myName) {
      wantName = null;
      myName = null;
    } else if (myName && what === "login to chat") {
      if (!users.includes(who)) users.push(who);
      showUsers(users);
    } else if (myName) {
      users = users.filter((name) => name !== who);
      showUsers(users);
    }
  } else if (pendingName && text.startsWith("[ERROR] - ")) {
    if (reconnecting) {
      // The name could not be taken back: now the login panel.
      reconnecting = false;
      showLoggedOut();
    }
    ui.loginError.textContent = text.slice("[ERROR] - ".length);
    if (text === "[ERROR] - Already login!") showLoggedIn(pendingName);
    pendingName = null;
    return;
  }
  append(html);
}

function showLoggedIn(name) {
  myName = name;
  ui.me.replaceChildren("as ", Object.assign(document.createElement("b"), { textContent: name }));
  ui.me.hidden = false;
  ui.logout.hidden = false;
  ui.loginPanel.hidden = true;
  ui.chatPanel.hidden = false;
  ui.text.focus();
  if (send("/userlist")) listsAsked.push(false);
}

function showLoggedOut() {
  myName = null;
  ui.me.hidden = true;
  ui.logout.hidden = true;
  ui.chatPanel.hidden = true;
  ui.loginPanel.hidden = false;
  if (wantName) ui.name.value = wantName;
}

function showUsers(names) {
  const chosen = ui.target.value;
  ui.users.replaceChildren(...names.map((name) => {
    const li = document.createElement("li");
    li.textContent = name;
    li.title = "message " + name;
    if (name === myName) li.className = "self";
    li.onclick = () => { ui.target.value = name; showUserList(false); ui.text.focus(); };
    return li;
  }));
  ui.count.textContent = String(names.length);
  const options = [new Option("everyone", "")];
  for (const name of names) if (name !== myName) options.push(new Option(name, name));
  ui.target.replaceChildren(...options);
  ui.target.value = names.includes(chosen) ? chosen : "";
}

// Rebuilds server HTML from text nodes and <span class="c-…"> only.
function safeFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  const out = document.createDocumentFragment();
  for (const node of template.content.childNodes) {
    if (node.nodeType === Node.ELEMENT_NODE && node.tagName === "SPAN" && /^c-(green|red|blue|yellow)$/.test(node.className)) {
      const span = document.createElement("span");
      span.className = node.className;
      span.textContent = node.textContent;
      out.append(span);
    } else {
      out.append(document.createTextNode(node.textContent));
    }
  }
  return out;
}

function append(html) {
  const li = document.createElement("li");
  li.append(safeFragment(html));
  push(li);
}

function appendText(text) {
  const li = document.createElement("li");
  li.textContent = text;
  push(li);
}

// Opens or closes the user list; only a narrow screen closes it. A narrow message box gets a
// placeholder short enough to read.
function showUserList(open) {
  open = open || !narrow.matches;
  ui.chatPanel.classList.toggle("users-open", open);
  ui.usersToggle.setAttribute("aria-expanded", String(open));
  ui.text.placeholder = narrow.matches ? "Message (/help)" : wideHint;
}

function notice(text) {
  const li = document.createElement("li");
  li.className = "notice";
  li.textContent = text;
  push(li);
}

function push(li) {
  const log = ui.log;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  while (log.childElementCount > LOG_LIMIT) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (!name) { ui.loginError.textContent = "Type a name first."; return; }
  login(name);
});

ui.sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value.trim();
  if (!text) return;
  const line = text.startsWith("/") ? text : ui.target.value ? `msg ${ui.target.value} ${text}` : `msgall ${text}`;
  if (send(line)) {
    ui.text.value = "";
    if (/^\/userlist(\s|$)/i.test(line)) listsAsked.push(true);
  }
});

ui.usersToggle.addEventListener("click", () => {
  showUserList(!ui.chatPanel.classList.contains("users-open"));
});
narrow.addEventListener("change", () => showUserList(false));

ui.logout.addEventListener("click", () => {
  wantName = null;
  send("logout");
});

showUserList(false);
connect();
