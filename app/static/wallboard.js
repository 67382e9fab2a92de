// The wallboard: signs a supervisor in, reads the Server-Sent Events stream with fetch (so the token
// stays in a header), and redraws on every snapshot. Waits and times in state tick locally between
// snapshots, from the server's clock as of the last snapshot.
"use strict";

const TOKEN_KEY = "hotline.wallboard.token";
const TILES = [
  ["connection_rate", "Connection rate", "rate"],
  ["service_level_rate", "N-second rate", "rate"],
  ["abandonment_rate", "Abandonment rate", "rate"],
  ["offered", "Offered", "count"],
  ["answered", "Answered", "count"],
  ["abandoned", "Abandoned", "count"],
  ["asa_seconds", "ASA", "seconds"],
  ["aht_seconds", "AHT", "seconds"],
];

let snapshot = null;
let clockOffset = 0; // server time - local time, in seconds

const $ = (sel) => document.querySelector(sel);
const now = () => Date.now() / 1000 + clockOffset;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

function format(value, kind) {
  if (value === null || value === undefined) return "–";
  if (kind === "rate") return `${(value * 100).toFixed(1)}%`;
  if (kind === "seconds") return `${value.toFixed(1)} s`;
  return String(value);
}

function renderKpis() {
  const kpis = snapshot.kpis || {};
  const targets = snapshot.targets || {};
  const n = snapshot.definitions.service_level_seconds;
  const tiles = TILES.map(([key, label, kind]) => {
    const target = targets[key];
    const cls = !target || target.met === null ? "tile" : target.met ? "tile ok" : "tile bad";
    const name = key === "service_level_rate" ? `${n}-second rate` : label;
    const tile = el("div", { class: cls, "data-kpi": key },
      el("div", { class: "label" }, name),
      el("div", { class: "value" }, format(kpis[key], kind)));
    if (target) {
      const sign = target.at_least ? "≥" : "≤";
      tile.append(el("div", { class: "target" }, `target ${sign} ${format(target.target, "rate")}`));
    }
    return tile;
  });
  $("#kpis").replaceChildren(...tiles);
}

function renderQueues() {
  const t = now();
  const blocks = snapshot.queues.map((queue) => {
    const oldest = queue.calls.reduce((m, c) => Math.max(m, t - c.enqueued_at), 0);
    const head = el("h3", {},
      el("span", { class: "name" }, queue.name),
      el("span", { "data-waiting": queue.name }, `${queue.calls_waiting} waiting`),
      el("span", { class: oldest > queue.service_level_seconds ? "late" : "" }, `oldest ${duration(oldest)}`),
      el("span", {}, `${queue.agents_available} agents serving`));
    if (!queue.calls.length) return el("div", { class: "queue" }, head, el("p", { class: "empty" }, "no one waiting"));
    const rows = queue.calls.map((call, i) => {
      const wait = t - call.enqueued_at;
      return el("tr", { class: wait > queue.service_level_seconds ? "call over-sl" : "call", "data-call": call.id },
        el("td", { class: "num" }, i + 1),
        el("td", {}, call.state === "offered" ? `ringing ${call.offered_to}` : "waiting"),
        el("td", { class: "num wait" }, duration(wait)));
    });
    const table = el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "State"), el("th", {}, "Wait"))),
      el("tbody", {}, ...rows));
    return el("div", { class: "queue" }, head, table);
  });
  $("#queues").replaceChildren(...blocks);
}

function renderAgents() {
  const t = now();
  const rows = snapshot.agents.map((agent) => el("tr", { class: agent.over_limit ? "over-limit" : "", "data-agent": agent.id },
    el("td", {}, agent.name && agent.name !== agent.id ? `${agent.name} (${agent.id})` : agent.id),
    el("td", {}, el("span", { class: `state ${agent.state}` }, agent.state.replace("_", " "))),
    el("td", {}, agent.reason || ""),
    el("td", { class: "num" }, duration(t - agent.since))));
  $("#agents tbody").replaceChildren(...rows);
  const counts = Object.entries(snapshot.agents_by_state)
    .filter(([state, n]) => n && state !== "logged_out")
    .map(([state, n]) => `${n} ${state.replace("_", " ")}`);
  $("#agent-summary").textContent = counts.join(" · ");
}

function render() {
  if (!snapshot) return;
  $("#day").textContent = `${snapshot.day} (${snapshot.timezone})`;
  renderKpis();
  renderQueues();
  renderAgents();
}

function setStatus(text, cls) {
  const link = $("#link");
  link.textContent = text;
  link.className = `status ${cls}`;
}

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#board").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  setStatus("signed out", "");
}

async function stream(token) {
  const response = await fetch("/api/v1/wallboard/stream", { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401 || response.status === 403) {
    showLogin(response.status === 403 ? "Supervisors only." : "Please sign in again.");
    return false;
  }
  if (!response.ok) throw new Error(`stream: HTTP ${response.status}`);
  $("#login").hidden = true;
  $("#board").hidden = false;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return true;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      snapshot = JSON.parse(data);
      clockOffset = snapshot.server_time - Date.now() / 1000;
      setStatus(snapshot.ami_up ? "live" : "live · telephony down", snapshot.ami_up ? "live" : "down");
      render();
    }
  }
}

async function run() {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      showLogin();
      return;
    }
    try {
      if (!(await stream(token))) return;
    } catch (err) {
      console.warn(err);
    }
    setStatus("reconnecting…", "down");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/api/v1/token", { method: "POST", body: new URLSearchParams(form) });
  if (!response.ok) {
    $("#login-error").textContent = "Wrong user or password.";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, (await response.json()).access_token);
  run();
});

setInterval(render, 1000);
run();
