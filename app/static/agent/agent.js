// The agent's desk: signs the agent in, follows its push stream (Server-Sent Events read with fetch,
// so the token stays in a header), drives its state, shows the screen pop when its phone rings, and
// opens the intake form on the work order of the answered call (drafts saved while the call lasts).
"use strict";

addStrings({
  "zh-CN": {
    title: "12345 热线 — 坐席工作台", heading: "12345 热线 · 坐席工作台", language: "语言",
    connecting: "连接中…", live: "实时", reconnecting: "重新连接…", signedOut: "未登录",
    signIn: "坐席登录", user: "用户名", password: "密码", signInButton: "登录",
    wrongPassword: "用户名或密码错误。", signInAgain: "请重新登录。", notAnAgent: "此账号不是坐席账号。",
    logIn: "签入", ready: "就绪", busy: "示忙", logOut: "签出",
    s_logged_out: "未签入", s_logged_in: "已签入", s_ready: "就绪", s_ringing: "振铃", s_on_call: "通话中",
    s_wrap_up: "话后整理", s_busy: "示忙", s_not_ready: "未就绪",
    wrapUpLeft: "整理剩余 {s}", needsApproval: "（需审批）",
    req_pending: "示忙申请（{reason}）待审批", req_approved: "示忙申请（{reason}）已批准",
    req_denied: "示忙申请（{reason}）被拒绝",
    incoming: "来电", queue: "队列", waited: "等待", repeatCaller: "重复来电", yes: "是", no: "否",
    checking: "查询中…", previousOrders: "历史工单", noPrevious: "无历史工单",
    date: "日期", category: "分类", status: "状态", summary: "摘要",
    inCall: "通话中", callEnded: "已挂断",
    workOrder: "工单", district: "区域", description: "诉求内容", address: "地址", citizenName: "市民姓名",
    contactNumber: "联系电话", urgent: "紧急", confidential: "为来电人保密", disposition: "处理方式",
    d_accepted: "受理为诉求", d_answered_directly: "当场答复", d_not_an_appeal: "非诉求",
    k_silent: "无声电话", k_wrong_number: "打错电话", k_prank: "骚扰电话", k_test: "测试",
    kbSearch: "知识库", search: "搜索", kbCited: "引用：{title}", kbNone: "未找到文章",
    submit: "提交", saved: "草稿已保存 {time}", submitted: "工单 {id} 已提交", stale: "工单已被他人修改，请刷新后再改。",
    fixErrors: "请更正标出的内容。", choose: "— 请选择 —",
    st_open: "受理中", st_accepted: "已受理", st_closed: "已办结",
    err_unknown: "不在可选范围内", err_required: "必填", err_not_allowed: "此处不适用",
    err_string_too_long: "内容过长", err_string_pattern_mismatch: "格式不正确", err_enum: "不在可选范围内",
  },
  en: {
    title: "12345 hotline — agent desk", heading: "12345 hotline · agent desk", language: "Language",
    connecting: "connecting…", live: "live", reconnecting: "reconnecting…", signedOut: "signed out",
    signIn: "Agent sign-in", user: "User", password: "Password", signInButton: "Sign in",
    wrongPassword: "Wrong user or password.", signInAgain: "Please sign in again.", notAnAgent: "This account is not an agent.",
    logIn: "Log in", ready: "Ready", busy: "Busy", logOut: "Log out",
    s_logged_out: "logged out", s_logged_in: "logged in", s_ready: "ready", s_ringing: "ringing", s_on_call: "on call",
    s_wrap_up: "wrap-up", s_busy: "busy", s_not_ready: "not ready",
    wrapUpLeft: "wrap-up ends in {s}", needsApproval: " (needs approval)",
    req_pending: "busy request ({reason}) pending", req_approved: "busy request ({reason}) approved",
    req_denied: "busy request ({reason}) denied",
    incoming: "Incoming call", queue: "Queue", waited: "Waited", repeatCaller: "Repeat caller", yes: "yes", no: "no",
    checking: "checking…", previousOrders: "Previous work orders", noPrevious: "no earlier work orders",
    date: "Date", category: "Category", status: "Status", summary: "Summary",
    inCall: "On call with", callEnded: "hung up",
    workOrder: "Work order", district: "District", description: "The citizen's matter", address: "Address",
    citizenName: "Citizen's name", contactNumber: "Contact number", urgent: "Urgent",
    confidential: "Keep the caller's identity confidential", disposition: "Disposition",
    d_accepted: "Accepted as an appeal", d_answered_directly: "Answered directly", d_not_an_appeal: "Not an appeal",
    k_silent: "silent call", k_wrong_number: "wrong number", k_prank: "prank", k_test: "test",
    kbSearch: "Knowledge base", search: "Search", kbCited: "cited: {title}", kbNone: "no article found",
    submit: "Submit", saved: "draft saved {time}", submitted: "work order {id} submitted",
    stale: "Someone else changed this work order: reload it before changing it.",
    fixErrors: "Please correct the marked fields.", choose: "— choose —",
    st_open: "open", st_accepted: "accepted", st_closed: "closed",
    err_unknown: "not one of the choices", err_required: "required", err_not_allowed: "does not apply here",
    err_string_too_long: "too long", err_string_pattern_mismatch: "wrong format", err_enum: "not one of the choices",
  },
});

const TOKEN_KEY = "hotline.agent.token";
const DRAFT_DELAY_MS = 1200;

const $ = (sel) => document.querySelector(sel);
let token = null;
let me = null;
let config = { busy_reasons: [] };
let categories = [];
let districts = [];
let desk = null;
let clockOffset = 0;
let order = null; // the work order open in the form
let saving = Promise.resolve();
let draftTimer = null;
let busyRequest = null;
let busyPoll = null;
let status = ["connecting", ""]; // the link's text key and class
let savedAt = null; // when the open draft was last saved
let orderNote = null; // [key, vars] of the message under the form
let fieldErrors = []; // the last 422's details

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

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (response.status === 401) showLogin(t("signInAgain"));
  return { status: response.status, ok: response.ok, data };
}

function detailText(data) {
  if (!data) return "";
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) return data.detail.map((e) => `${e.loc[e.loc.length - 1]}: ${e.msg}`).join("; ");
  return "";
}

// --- names ---------------------------------------------------------------------------------------

function categoryName(code) {
  const walk = (nodes) => {
    for (const node of nodes) {
      if (node.code === code) return node;
      const found = walk(node.children);
      if (found) return found;
    }
    return null;
  };
  const node = code ? walk(categories) : null;
  if (!node) return code || "–";
  return pageLang === "en" ? node.en : node.zh;
}

// --- the state bar -------------------------------------------------------------------------------

function renderState() {
  if (!desk) return;
  const state = $("#state");
  state.textContent = t(`s_${desk.state}`);
  state.className = `state ${desk.state}`;
  state.dataset.state = desk.state;
  const reason = config.busy_reasons.find((r) => r.key === desk.reason);
  $("#reason").textContent = desk.reason ? (reason ? reason.name : desk.reason) : "";
  $("#time-in-state").textContent = desk.since ? duration(now() - desk.since) : "";
  const wrap = $("#wrapup");
  wrap.hidden = !desk.wrap_up_until;
  if (desk.wrap_up_until) wrap.textContent = t("wrapUpLeft", { s: duration(desk.wrap_up_until - now()) });
  if (desk.endpoint && !$("#endpoint").value) $("#endpoint").value = desk.endpoint;
  $("#btn-login").disabled = desk.state !== "logged_out";
  $("#btn-logout").disabled = desk.state === "logged_out";
  $("#btn-ready").disabled = desk.state === "logged_out" || desk.state === "ready";
  $("#btn-busy").disabled = desk.state === "logged_out";
}

function renderBusyReasons() {
  const options = config.busy_reasons.map((r) =>
    el("option", { value: r.key }, r.name + (r.needs_approval ? t("needsApproval") : "")));
  $("#busy-reason").replaceChildren(...options);
}

function renderBusyRequest() {
  const box = $("#busy-request");
  box.hidden = !busyRequest;
  if (!busyRequest) return;
  box.dataset.status = busyRequest.status;
  box.textContent = t(`req_${busyRequest.status}`, { reason: busyRequest.reason });
}

async function act(action, body) {
  $("#action-error").textContent = "";
  const result = await api("POST", `/api/v1/agents/${encodeURIComponent(me.agent_id)}/${action}`, body);
  if (!result.ok) $("#action-error").textContent = detailText(result.data) || `HTTP ${result.status}`;
}

async function goBusy() {
  const key = $("#busy-reason").value;
  const reason = config.busy_reasons.find((r) => r.key === key);
  if (reason && reason.needs_approval) {
    const result = await api("POST", "/api/v1/busy-requests", { agent_id: me.agent_id, reason: key });
    if (!result.ok) {
      $("#action-error").textContent = detailText(result.data) || `HTTP ${result.status}`;
      return;
    }
    busyRequest = result.data;
    renderBusyRequest();
    clearInterval(busyPoll);
    busyPoll = setInterval(pollBusyRequest, 2000);
    return;
  }
  await act("busy", { reason: key });
}

async function pollBusyRequest() {
  if (!busyRequest) return;
  const result = await api("GET", `/api/v1/busy-requests?agent=${encodeURIComponent(me.agent_id)}`);
  if (!result.ok) return;
  const mine = result.data.find((r) => r.id === busyRequest.id);
  if (mine) busyRequest = mine;
  if (busyRequest.status !== "pending") clearInterval(busyPoll);
  renderBusyRequest();
}

// --- the screen pop and the call -----------------------------------------------------------------

function renderPop() {
  const offer = desk && desk.offer;
  const pop = $("#pop");
  pop.hidden = !offer;
  if (!offer) return;
  pop.dataset.call = offer.call_id;
  $("#pop-number").textContent = offer.caller_number || "–";
  $("#pop-queue").textContent = offer.queue || "–";
  $("#pop-wait").textContent = offer.enqueued_at ? duration(now() - offer.enqueued_at) : "–";
  const repeat = $("#pop-repeat");
  repeat.textContent = offer.repeat_caller === null ? t("checking") : offer.repeat_caller ? t("yes") : t("no");
  repeat.className = offer.repeat_caller ? "repeat" : "";
  const previous = offer.previous_orders || [];
  const rows = previous.map((o) => el("tr", { "data-order": o.id },
    el("td", {}, localTime(Date.parse(o.date) / 1000, true)),
    el("td", {}, categoryName(o.category)),
    el("td", {}, t(`st_${o.status}`)),
    el("td", {}, o.summary || "")));
  $("#pop-history tbody").replaceChildren(...rows);
  $("#pop-history-empty").hidden = offer.previous_orders === null || previous.length > 0;
}

function renderCall() {
  const call = desk && desk.call;
  $("#call").hidden = !call;
  if (!call) return;
  $("#call").dataset.call = call.call_id;
  $("#call-number").textContent = call.caller_number || "–";
  $("#call-ended").hidden = !call.ended;
  if (call.work_order_id && (!order || order.id !== call.work_order_id) && !$("#order").dataset.submitted?.split(",").includes(String(call.work_order_id))) {
    openOrder(call.work_order_id);
  }
}

// --- the intake form -----------------------------------------------------------------------------

function fillCategories() {
  const options = [el("option", { value: "" }, t("choose"))];
  const walk = (nodes, depth) => {
    for (const node of nodes) {
      options.push(el("option", { value: node.code }, `${"　".repeat(depth)}${pageLang === "en" ? node.en : node.zh}`));
      walk(node.children, depth + 1);
    }
  };
  walk(categories, 0);
  const select = $("#order [name=category]");
  const value = select.value;
  select.replaceChildren(...options);
  select.value = value;
  const dselect = $("#order [name=district]");
  const dvalue = dselect.value;
  dselect.replaceChildren(el("option", { value: "" }, t("choose")),
    ...districts.map((d) => el("option", { value: d.code }, pageLang === "en" ? d.en : d.zh)));
  dselect.value = dvalue;
}

function formValues() {
  const form = $("#order");
  const value = (name) => form.elements[name].value;
  const disposition = form.querySelector("[name=disposition]:checked");
  return {
    category: value("category") || null,
    district: value("district") || null,
    description: value("description"),
    address: value("address"),
    citizen_name: value("citizen_name"),
    contact_number: value("contact_number"),
    urgent: form.elements.urgent.checked,
    confidential: form.elements.confidential.checked,
    disposition: disposition ? disposition.value : null,
    non_appeal_kind: disposition && disposition.value === "not_an_appeal" ? value("non_appeal_kind") || null : null,
    knowledge_article_id: disposition && disposition.value === "answered_directly" ? (order.knowledge_article_id || null) : null,
  };
}

function showDispositionExtras() {
  const form = $("#order");
  const disposition = form.querySelector("[name=disposition]:checked");
  form.elements.non_appeal_kind.hidden = !(disposition && disposition.value === "not_an_appeal");
  $("#kb").hidden = !(disposition && disposition.value === "answered_directly");
}

function fillForm(data) {
  const form = $("#order");
  order = data;
  form.dataset.orderId = data.id;
  $("#order-id").textContent = `#${data.id}`;
  fillCategories();
  for (const name of ["category", "district", "description", "address", "citizen_name", "contact_number"]) {
    form.elements[name].value = data[name] ?? "";
  }
  form.elements.urgent.checked = data.urgent;
  form.elements.confidential.checked = data.confidential;
  for (const radio of form.querySelectorAll("[name=disposition]")) radio.checked = radio.value === data.disposition;
  form.elements.non_appeal_kind.value = data.non_appeal_kind || "";
  $("#kb-cited").textContent = data.knowledge_article_id ? t("kbCited", { title: `#${data.knowledge_article_id}` }) : "";
  showDispositionExtras();
  clearErrors();
}

function clearErrors() {
  fieldErrors = [];
  renderErrors();
}

function showErrors(data) {
  fieldErrors = data && Array.isArray(data.detail) ? data.detail : [];
  renderErrors();
}

function renderErrors() {
  for (const node of document.querySelectorAll(".field-error")) node.textContent = "";
  for (const error of fieldErrors) {
    const field = error.loc[error.loc.length - 1];
    const node = document.querySelector(`.field-error[data-for="${field}"]`);
    const key = `err_${error.type}`;
    if (node) node.textContent = t(key) === key ? error.msg : t(key);
  }
}

function note(key, vars = {}) {
  orderNote = key ? [key, vars] : null;
  renderNotes();
}

function renderNotes() {
  const message = $("#order-message");
  message.textContent = orderNote ? t(orderNote[0], orderNote[1]) : "";
  $("#order-saved").textContent = savedAt ? t("saved", { time: localTime(savedAt) }) : "";
  const banner = $("#order-banner");
  if (banner) banner.textContent = t("submitted", { id: banner.dataset.order });
}

async function openOrder(id) {
  const result = await api("GET", `/api/v1/work-orders/${id}`);
  if (!result.ok || result.data.status !== "open") return; // submitted: only the center changes it
  $("#order").hidden = false;
  savedAt = null;
  note(null);
  fillForm(result.data);
}

function send(kind) {
  // One change at a time, each based on the version the previous one returned.
  saving = saving.then(async () => {
    if (!order) return;
    const path = kind === "submit" ? `/api/v1/work-orders/${order.id}/submit` : `/api/v1/work-orders/${order.id}`;
    const result = await api(kind === "submit" ? "POST" : "PATCH", path, { version: order.version, ...formValues() });
    if (result.ok) {
      order = result.data;
      clearErrors();
      if (kind === "submit") {
        const form = $("#order");
        form.dataset.submitted = [form.dataset.submitted || "", order.id].join(",");
        $("#order-message").dataset.submitted = order.id;
        form.hidden = true;
        $("#order-banner")?.remove();
        document.querySelector("main").append(el("p", { id: "order-banner", class: "muted", "data-order": order.id }));
        note("submitted", { id: order.id });
        order = null;
        savedAt = null;
        renderNotes();
      } else {
        savedAt = Date.parse(result.data.updated_at) / 1000;
        renderNotes();
      }
    } else if (result.status === 409) {
      note("stale");
    } else if (result.status === 422) {
      showErrors(result.data);
      if (kind === "submit") note("fixErrors");
    } else {
      orderNote = null;
      $("#order-message").textContent = detailText(result.data) || `HTTP ${result.status}`;
    }
  });
  return saving;
}

function scheduleDraft() {
  clearTimeout(draftTimer);
  draftTimer = setTimeout(() => send("draft"), DRAFT_DELAY_MS);
}

async function searchKnowledge() {
  const query = $("#kb-query").value.trim();
  if (!query) return;
  const result = await api("GET", `/api/v1/knowledge?q=${encodeURIComponent(query)}&valid=true`);
  if (!result.ok) return;
  const items = result.data.items || [];
  const rows = items.map((a) => {
    const li = el("li", { "data-article": a.id, class: order && order.knowledge_article_id === a.id ? "cited" : "" }, a.title);
    li.addEventListener("click", () => {
      if (!order) return;
      order.knowledge_article_id = a.id;
      $("#kb-cited").textContent = t("kbCited", { title: a.title });
      for (const node of document.querySelectorAll("#kb-results li")) node.className = node === li ? "cited" : "";
      scheduleDraft();
    });
    return li;
  });
  $("#kb-results").replaceChildren(...(rows.length ? rows : [el("li", { class: "muted" }, t("kbNone"))]));
}

// --- sign-in and the stream ----------------------------------------------------------------------

function setStatus(key, cls) {
  status = [key, cls];
  const link = $("#link");
  link.textContent = t(key);
  link.className = `status ${cls}`;
}

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  $("#desk").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  setStatus("signedOut", "");
}

function render() {
  renderState();
  renderPop();
  renderCall();
}

async function stream() {
  const response = await fetch(`/api/v1/desk/${encodeURIComponent(me.agent_id)}/stream`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (response.status === 401 || response.status === 403) {
    showLogin(t("signInAgain"));
    return false;
  }
  if (!response.ok) throw new Error(`stream: HTTP ${response.status}`);
  setStatus("live", "live");
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
      desk = JSON.parse(data);
      clockOffset = desk.server_time - Date.now() / 1000;
      render();
    }
  }
}

async function start() {
  token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    showLogin();
    return;
  }
  const who = await api("GET", "/api/v1/desk/me");
  if (!who.ok) return;
  me = who.data;
  if (!me.agent_id) {
    showLogin(t("notAnAgent"));
    return;
  }
  $("#who").textContent = `${me.username} · ${me.agent_id}`;
  const [cfg, cats, dists] = await Promise.all([
    api("GET", "/api/v1/desk/config"), api("GET", "/api/v1/categories"), api("GET", "/api/v1/districts"),
  ]);
  if (cfg.ok) config = cfg.data;
  if (cats.ok) categories = cats.data.categories;
  if (dists.ok) districts = dists.data;
  renderBusyReasons();
  fillCategories();
  $("#login").hidden = true;
  $("#desk").hidden = false;
  for (;;) {
    if (!token) return;
    try {
      if (!(await stream())) return;
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
  start();
});
$("#btn-login").addEventListener("click", () => act("login", { endpoint: $("#endpoint").value.trim() }));
$("#btn-ready").addEventListener("click", () => act("ready"));
$("#btn-busy").addEventListener("click", goBusy);
$("#btn-logout").addEventListener("click", () => act("logout"));
$("#order").addEventListener("input", (event) => {
  if (event.target.name === "disposition") showDispositionExtras();
  if (event.target.id !== "kb-query") scheduleDraft();
});
$("#order").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(draftTimer);
  send("submit");
});
$("#kb-go").addEventListener("click", searchKnowledge);
watchLanguageSelect(() => {
  setStatus(...status);
  renderErrors();
  renderNotes();
  renderBusyReasons();
  fillCategories();
  renderBusyRequest();
  render();
});

setInterval(renderState, 1000);
setInterval(renderPop, 1000);
loadPageSettings("/agent/settings.json").then(() => {
  setStatus(...status);
  start();
});
