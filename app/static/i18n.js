// The pages' languages: Simplified Chinese and English. The default comes from the service
// (HOTLINE_LANGUAGE, via the page's settings.json); the choice made on a page is remembered in the
// browser. Each page adds its strings with addStrings({"zh-CN": {...}, en: {...}}); elements with
// data-i18n="key" get their text from them, t(key, vars) gives text built in code.
"use strict";

const I18N = { "zh-CN": {}, en: {} };

function addStrings(table) {
  for (const [lang, strings] of Object.entries(table)) Object.assign((I18N[lang] ||= {}), strings);
}

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
