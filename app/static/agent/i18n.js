// The page's languages: Simplified Chinese and English. The default comes from the service
// (HOTLINE_LANGUAGE, via settings.json); the choice on the page is remembered in this browser.
// Elements with data-i18n="key" get their text from the table; t(key, vars) for text built in code.
"use strict";

const I18N = {
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
};

const LANG_KEY = "hotline.lang";
let pageLang = "zh-CN";
let pageZone = "Asia/Shanghai";

function t(key, vars = {}) {
  const table = I18N[pageLang] || I18N["zh-CN"];
  let text = table[key] ?? I18N.en[key] ?? key;
  for (const [name, value] of Object.entries(vars)) text = text.replace(`{${name}}`, value);
  return text;
}

function applyLanguage(lang) {
  pageLang = I18N[lang] ? lang : "zh-CN";
  document.documentElement.lang = pageLang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  const select = document.getElementById("lang");
  if (select) select.value = pageLang;
}

// Times in the center's time zone, in the page's language.
function localTime(epochSeconds, withDate = false) {
  const options = { timeZone: pageZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
  return new Intl.DateTimeFormat(pageLang, options).format(new Date(epochSeconds * 1000));
}

async function loadPageSettings(url) {
  try {
    const response = await fetch(url);
    if (response.ok) {
      const settings = await response.json();
      pageZone = settings.timezone || pageZone;
      applyLanguage(localStorage.getItem(LANG_KEY) || settings.language);
      return;
    }
  } catch (err) {
    console.warn(err);
  }
  applyLanguage(localStorage.getItem(LANG_KEY) || "zh-CN");
}

function watchLanguageSelect(onChange) {
  const select = document.getElementById("lang");
  if (!select) return;
  select.addEventListener("change", () => {
    localStorage.setItem(LANG_KEY, select.value);
    applyLanguage(select.value);
    if (onChange) onChange();
  });
}
