// Pieces every view shares: the page frame, the language switch, the
// sign-in by phone and code, the live-connection badge, an error line.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { anonymous, clearSession, hasRole, must, saveSession, session, api } from "./api";
import type { Problem } from "./api";
import { createToken, logoutSession, requestOtp } from "./gen/sdk.gen";
import { lang, problemText, setLang, tr, useLang } from "./i18n";
import type { Text } from "./i18n";
import { live } from "./live";
import { useSignal } from "./state";

const TEXT = {
  app: { zh: "党群户联网", en: "Dangqun Hulian" },
  resident: { zh: "一键呼叫", en: "Call" },
  volunteer: { zh: "志愿服务", en: "Volunteer" },
  dispatcher: { zh: "调度平台", en: "Dispatch" },
  signOut: { zh: "退出登录", en: "Sign out" },
  phone: { zh: "手机号", en: "Mobile number" },
  code: { zh: "短信验证码", en: "Code from the text message" },
  sendCode: { zh: "获取验证码", en: "Send me a code" },
  resend: { zh: "{s} 秒后可重发", en: "Resend in {s} s" },
  signIn: { zh: "登录", en: "Sign in" },
  signInTitle: { zh: "用手机号登录", en: "Sign in with your mobile number" },
  codeSent: { zh: "验证码已发送，请查看短信", en: "We sent you a code by text message" },
  live: { zh: "实时连接", en: "Live" },
  connecting: { zh: "正在连接…", en: "Connecting…" },
  offline: { zh: "未连接", en: "Offline" },
} satisfies Record<string, Text>;

export function LanguageSwitch() {
  const current = useLang();
  const other = current === "zh" ? "en" : "zh";
  return (
    <button
      type="button"
      class="lang-switch"
      lang={other === "zh" ? "zh-CN" : "en"}
      onClick={() => setLang(other)}
      aria-label={other === "zh" ? "切换到中文" : "Switch to English"}
    >
      {other === "zh" ? "中文" : "English"}
    </button>
  );
}

export function LiveBadge() {
  useLang();
  const status = useSignal(live.status);
  const label = status === "live" ? TEXT.live : status === "connecting" ? TEXT.connecting : TEXT.offline;
  return (
    <span class={`live-badge live-${status}`} role="status" data-live={status}>
      {tr(label)}
    </span>
  );
}

export type ViewName = "resident" | "volunteer" | "dispatcher";

/** The frame of a signed-in view: title, the views this person may open, language, sign out. */
export function Frame(props: { view: ViewName; children: ComponentChildren }) {
  useLang();
  const current = useSignal(session);
  const views: ViewName[] = ["resident"];
  if (hasRole("volunteer")) views.push("volunteer");
  if (hasRole("dispatcher") || hasRole("admin")) views.push("dispatcher");
  return (
    <div class={`frame frame-${props.view}`}>
      <header class="topbar">
        <h1 class="brand">{tr(TEXT.app)}</h1>
        {current && views.length > 1 && (
          <nav aria-label={lang.get() === "zh" ? "视图" : "Views"}>
            {views.map((name) => (
              <a href={`#/${name}`} class="tab" aria-current={name === props.view ? "page" : undefined}>
                {tr(TEXT[name])}
              </a>
            ))}
          </nav>
        )}
        <div class="topbar-end">
          {current && <LiveBadge />}
          <LanguageSwitch />
          {current && (
            <button type="button" class="link-button" onClick={() => void signOut()}>
              {tr(TEXT.signOut)}
            </button>
          )}
        </div>
      </header>
      <main id="main">{current ? props.children : <SignIn />}</main>
    </div>
  );
}

export async function signOut(): Promise<void> {
  try {
    await logoutSession({ client: api });
  } finally {
    clearSession();
  }
}

/** One step a person takes (a button, a form): busy while it runs, and the
 * API's problem kept to show (with <ErrorLine/>) when it fails. */
export function useAct() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  async function act(step: () => Promise<void>): Promise<void> {
    setBusy(true);
    setProblem(null);
    try {
      await step();
    } catch (error) {
      setProblem(error as Problem);
    } finally {
      setBusy(false);
    }
  }
  return { busy, problem, setProblem, act };
}

export function ErrorLine(props: { problem: Problem | null }) {
  useLang();
  if (!props.problem) return null;
  return (
    <p class="error" role="alert">
      {problemText(props.problem)}
    </p>
  );
}

/** Sign in by phone and a texted code. Outside production the API answers
 * the code itself (`debug_code`); the form fills it in, for demos. */
export function SignIn() {
  useLang();
  const [phone, setPhone] = useState("");
  const [code, setCode] = useState("");
  const [sent, setSent] = useState(false);
  const [wait, setWait] = useState(0);
  const { busy, problem, act } = useAct();

  const send = (event: Event) => {
    event.preventDefault();
    return act(async () => {
      const answer = await must(requestOtp({ client: anonymous, body: { phone } }));
      setSent(true);
      if (answer.debug_code) setCode(answer.debug_code);
      setWait(answer.resend_after);
      const timer = window.setInterval(() => {
        setWait((left) => {
          if (left <= 1) window.clearInterval(timer);
          return Math.max(0, left - 1);
        });
      }, 1000);
    });
  };

  const signIn = (event: Event) => {
    event.preventDefault();
    return act(async () => {
      saveSession(await must(createToken({ client: anonymous, body: { phone, code } })));
    });
  };

  return (
    <form class="card sign-in" onSubmit={sent ? signIn : send}>
      <h2>{tr(TEXT.signInTitle)}</h2>
      <label>
        {tr(TEXT.phone)}
        <input
          name="phone"
          type="tel"
          inputMode="tel"
          autoComplete="tel"
          required
          value={phone}
          onInput={(e) => setPhone(e.currentTarget.value)}
        />
      </label>
      {sent && (
        <>
          <p class="hint" role="status">
            {tr(TEXT.codeSent)}
          </p>
          <label>
            {tr(TEXT.code)}
            <input
              name="code"
              inputMode="numeric"
              autoComplete="one-time-code"
              required
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </label>
        </>
      )}
      <ErrorLine problem={problem} />
      <div class="row">
        {sent && (
          <button type="button" class="secondary" disabled={busy || wait > 0} onClick={send}>
            {wait > 0 ? tr(TEXT.resend, { s: wait }) : tr(TEXT.sendCode)}
          </button>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {sent ? tr(TEXT.signIn) : tr(TEXT.sendCode)}
        </button>
      </div>
    </form>
  );
}
