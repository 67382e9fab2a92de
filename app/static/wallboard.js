// The wallboard: signs a supervisor in, reads the Server-Sent Events stream with fetch (so the token
// stays in a header), and redraws on every snapshot. Waits and times in state tick locally between
// snapshots, from the server's clock as of the last snapshot.
// Texts in Simplified Chinese and English (/static/i18n.js), times in the center's time zone.
"use strict";

addStrings({
  "zh-CN": {
    wb_title: "12345 热线 — 监控大屏", wb_heading: "12345 热线", language: "语言",
    connecting: "连接中…", live: "实时", liveDown: "实时 · 话务系统断开", reconnecting: "重新连接…",
    signedOut: "未登录", wb_signIn: "班长登录", user: "用户名", password: "密码", signInButton: "登录",
    wrongPassword: "用户名或密码错误。", supervisorsOnly: "仅限班长及以上。", signInAgain: "请重新登录。",
    wb_queues: "队列", wb_agents: "坐席", wb_agent: "坐席", status: "状态", wb_reason: "原因", wb_timeInState: "持续时间",
    kpi_connection_rate: "接通率", kpi_service_level_rate: "{n} 秒接通率", kpi_abandonment_rate: "放弃率",
    kpi_offered: "呼入", kpi_answered: "接通", kpi_abandoned: "放弃", kpi_asa_seconds: "平均应答时长",
    kpi_aht_seconds: "平均处理时长", kpi_acceptance_rate: "受理率",
    target: "目标 {sign} {value}", waiting: "{n} 人等待", oldest: "最长 {t}", serving: "{n} 名坐席服务",
    nobodyWaiting: "无人等待", col_position: "#", col_state: "状态", col_wait: "等待",
    call_waiting: "等待中", call_ringing: "振铃 {agent}",
    s_logged_out: "未签入", s_logged_in: "已签入", s_ready: "就绪", s_ringing: "振铃", s_on_call: "通话中",
    s_wrap_up: "话后整理", s_busy: "示忙", s_not_ready: "未就绪",
  },
  en: {
    wb_title: "12345 hotline — wallboard", wb_heading: "12345 hotline", language: "Language",
    connecting: "connecting…", live: "live", liveDown: "live · telephony down", reconnecting: "reconnecting…",
    signedOut: "signed out", wb_signIn: "Supervisor sign-in", user: "User", password: "Password",
    signInButton: "Sign in", wrongPassword: "Wrong user or password.", supervisorsOnly: "Supervisors only.",
    signInAgain: "Please sign in again.", wb_queues: "Queues", wb_agents: "Agents", wb_agent: "Agent",
    status: "State", wb_reason: "Reason", wb_timeInState: "Time in state",
    kpi_connection_rate: "Connection rate", kpi_service_level_rate: "{n}-second rate",
    kpi_abandonment_rate: "Abandonment rate", kpi_offered: "Offered", kpi_answered: "Answered",
    kpi_abandoned: "Abandoned", kpi_asa_seconds: "ASA", kpi_aht_seconds: "AHT", kpi_acceptance_rate: "Acceptance rate",
    target: "target {sign} {value}", waiting: "{n} waiting", oldest: "oldest {t}", serving: "{n} agents serving",
    nobodyWaiting: "no one waiting", col_position: "#", col_state: "State", col_wait: "Wait",
    call_waiting: "waiting", call_ringing: "ringing {agent}",
    s_logged_out: "logged out", s_logged_in: "logged in", s_ready: "ready", s_ringing: "ringing", s_on_call: "on call",
    s_wrap_up: "wrap up", s_busy: "busy", s_not_ready: "not ready",
  },
});

const TOKEN_KEY = "hotline.wallboard.token";
const TILES = [
  ["connection_rate", "rate"],
  ["service_level_rate", "rate"],
  ["abandonment_rate", "rate"],
  ["acceptance_rate", "rate"],
  ["offered", "count"],
  ["answered", "count"],
  ["abandoned", "count"],
  ["asa_seconds", "seconds"],
  ["aht_seconds", "seconds"],
];

let snapshot = null;
let clockOffset = 0; // server time - local time, in seconds
let status = ["connecting", ""]; // the link's text key and class

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
  const tiles = TILES.map(([key, kind]) => {
    const target = targets[key];
    const cls = !target || target.met === null ? "tile" : target.met ? "tile ok" : "tile bad";
    const name = t(`kpi_${key}`, { n });
    const tile = el("div", { class: cls, "data-kpi": key },
      el("div", { class: "label" }, name),
      el("div", { class: "value" }, format(kpis[key], kind)));
    if (target) {
      const sign = target.at_least ? "≥" : "≤";
      tile.append(el("div", { class: "target" }, t("target", { sign, value: format(target.target, "rate") })));
    }
    return tile;
  });
  $("#kpis").replaceChildren(...tiles);
}

function renderQueues() {
  const at = now();
  const blocks = snapshot.queues.map((queue) => {
    const oldest = queue.calls.reduce((m, c) => Math.max(m, at - c.enqueued_at), 0);
    const head = el("h3", {},
      el("span", { class: "name" }, queue.name),
      el("span", { "data-waiting": queue.name }, t("waiting", { n: queue.calls_waiting })),
      el("span", { class: oldest > queue.service_level_seconds ? "late" : "" }, t("oldest", { t: duration(oldest) })),
      el("span", {}, t("serving", { n: queue.agents_available })));
    if (!queue.calls.length) return el("div", { class: "queue" }, head, el("p", { class: "empty" }, t("nobodyWaiting")));
    const rows = queue.calls.map((call, i) => {
      const wait = at - call.enqueued_at;
      return el("tr", { class: wait > queue.service_level_seconds ? "call over-sl" : "call", "data-call": call.id },
        el("td", { class: "num" }, i + 1),
        el("td", {}, call.state === "offered" ? t("call_ringing", { agent: call.offered_to }) : t("call_waiting")),
        el("td", { class: "num wait" }, duration(wait)));
    });
    const table = el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, t("col_position")), el("th", {}, t("col_state")), el("th", {}, t("col_wait")))),
      el("tbody", {}, ...rows));
    return el("div", { class: "queue" }, head, table);
  });
  $("#queues").replaceChildren(...blocks);
}

function renderAgents() {
  const at = now();
  const rows = snapshot.agents.map((agent) => el("tr", { class: agent.over_limit ? "over-limit" : "", "data-agent": agent.id },
    el("td", {}, agent.name && agent.name !== agent.id ? `${agent.name} (${agent.id})` : agent.id),
    el("td", {}, el("span", { class: `state ${agent.state}` }, t(`s_${agent.state}`))),
    el("td", {}, agent.reason || ""),
    el("td", { class: "num" }, duration(at - agent.since))));
  $("#agents tbody").replaceChildren(...rows);
  const counts = Object.entries(snapshot.agents_by_state)
    .filter(([state, n]) => n && state !== "logged_out")
    .map(([state, n]) => `${n} ${t(`s_${state}`)}`);
  $("#agent-summary").textContent = counts.join(" · ");
}

function render() {
  if (!snapshot) return;
  $("#day").textContent = `${snapshot.day} (${snapshot.timezone})`;
  $("#clock").textContent = localTime(now());
  renderKpis();
  renderQueues();
  renderAgents();
}

function setStatus(key, cls) {
  status = [key, cls];
  const link = $("#link");
  link.textContent = t(key);
  link.className = `status ${cls}`;
}

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#board").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  setStatus("signedOut", "");
}

async function stream(token) {
  const response = await fetch("/api/v1/wallboard/stream", { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401 || response.status === 403) {
    showLogin(t(response.status === 403 ? "supervisorsOnly" : "signInAgain"));
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
      setStatus(snapshot.ami_up ? "live" : "liveDown", snapshot.ami_up ? "live" : "down");
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
    setStatus("reconnecting", "down");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/api/v1/token", { method: "POST", body: new URLSearchParams(form) });
  if (!response.ok) {
    $("#login-error").textContent = t("wrongPassword");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, (await response.json()).access_token);
  run();
});

watchLanguageSelect(() => {
  setStatus(...status);
  render();
});
setInterval(render, 1000);
loadPageSettings("/wallboard/settings.json").then(() => {
  setStatus(...status);
  run();
});
