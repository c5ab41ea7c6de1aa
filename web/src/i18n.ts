// Chinese first, English when the browser asks for it (or the person picks
// it). Every string of a view lives beside the view as `{ zh, en }` pairs:
// `tr(TEXT.press)`, `tr(TEXT.eta, { min: 5 })` fills `{min}`.
import { signal, useSignal } from "./state";

export type Lang = "zh" | "en";
export interface Text {
  zh: string;
  en: string;
}

const STORAGE_KEY = "hulian.lang";

function initial(): Lang {
  const chosen = localStorage.getItem(STORAGE_KEY);
  if (chosen === "zh" || chosen === "en") return chosen;
  const first = (navigator.languages?.[0] ?? navigator.language ?? "zh").toLowerCase();
  return first.startsWith("en") ? "en" : "zh";
}

export const lang = signal<Lang>(initial());

export function setLang(next: Lang): void {
  localStorage.setItem(STORAGE_KEY, next);
  lang.set(next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
}
document.documentElement.lang = lang.get() === "zh" ? "zh-CN" : "en";

export function tr(text: Text, vars?: Record<string, string | number>): string {
  let out = text[lang.get()];
  if (vars) for (const [k, v] of Object.entries(vars)) out = out.replaceAll(`{${k}}`, String(v));
  return out;
}

/** Re-render the calling component when the language changes. */
export function useLang(): Lang {
  return useSignal(lang);
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleTimeString(lang.get() === "zh" ? "zh-CN" : "en-GB", {
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function formatDistance(m: number): string {
  if (m < 1000) return lang.get() === "zh" ? `${Math.round(m)} 米` : `${Math.round(m)} m`;
  const km = (m / 1000).toFixed(1);
  return lang.get() === "zh" ? `${km} 公里` : `${km} km`;
}

/** What the app says for an API problem, by its stable code. */
const PROBLEMS: Record<string, Text> = {
  network: { zh: "网络不通，请稍后再试", en: "No connection. Please try again." },
  invalid_otp: { zh: "验证码不对，请再看一下短信", en: "That code is not right. Check the text message." },
  rate_limited: { zh: "操作太频繁，请稍后再试", en: "Too many tries. Please wait a moment." },
  outside_service_area: { zh: "这个位置不在服务范围内", en: "This place is outside the service area." },
  offer_closed: { zh: "这个呼叫已被别人接了或已结束", en: "Someone else took this call, or it ended." },
  responder_busy: { zh: "您还有一个进行中的呼叫", en: "You are already answering a call." },
  invalid_transition: { zh: "这一步现在不能做", en: "That step is not possible now." },
  not_on_duty: { zh: "您还没有上岗", en: "You are not on duty." },
  dispute_window_closed: { zh: "已过了申诉期限", en: "The time to dispute has passed." },
  team_incomplete: { zh: "这个队伍人数不够，不能派单", en: "This team is not complete; it cannot be assigned." },
  activity_in_future: { zh: "时间不能晚于现在", en: "The time cannot be in the future." },
  activity_too_old: { zh: "太早的活动不能再补记了", en: "That is too long ago to log now." },
  not_a_member: { zh: "您不是这个队伍的队员", en: "You are not a member of this team." },
  household_not_paired: { zh: "这一户不是与您结对的住户", en: "That household is not paired with you." },
  overloaded: { zh: "系统繁忙，请稍后再试", en: "The service is busy. Please try again." },
  too_many_open_calls: { zh: "您已有进行中的呼叫，请等候党员", en: "You already have calls open. Please wait for them." },
  idempotency_key_in_flight: { zh: "正在呼叫，请稍候", en: "Your call is being made. Please wait." },
  already_rated: { zh: "您已经评价过了", en: "You have rated this call already." },
  already_disputed: { zh: "您已经申诉过了", en: "You have disputed this call already." },
};

export function problemText(problem: { code: string; detail?: string; status: number }): string {
  const known = PROBLEMS[problem.code];
  if (known) return tr(known);
  return problem.detail || (lang.get() === "zh" ? `出错了（${problem.status}）` : `Something went wrong (${problem.status})`);
}
