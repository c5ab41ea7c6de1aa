// The call button of a registered screen, for a resident who walks up: an
// optional phone number on an on-screen keypad, the press (POST
// /public/screens/{id}/calls with the screen's key), then 'help is coming'
// with the team's name once a member takes it (GET
// /public/screens/{id}/calls/{call_id}, every few seconds), and back to the
// figures after a while. Nothing of the caller stays on the screen.
import { useEffect, useRef, useState } from "preact/hooks";
import { anonymous, must } from "../../api";
import type { Problem } from "../../api";
import { createScreenCall, getScreenCall } from "../../gen/sdk.gen";
import type { CallStatus } from "../../gen/types.gen";
import { problemText, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { backSeconds } from "./device";

const POLL_MS = 3000;
const KEYPAD_IDLE_MS = 90_000;
const TAKEN: CallStatus[] = ["accepted", "en_route", "on_site", "resolved"];

const TEXT = {
  button: { zh: "党员一键呼叫", en: "Call a party member" },
  buttonHint: { zh: "需要帮忙，请按这里", en: "Need help? Press here" },
  keypadTitle: { zh: "请党员来帮忙", en: "Ask a party member to help" },
  keypadHint: {
    zh: "手机号可以不填。留下号码，党员接单后会发短信告诉您。",
    en: "Your mobile number is optional. Leave it and we text you when a member takes your call.",
  },
  number: { zh: "您的手机号（可不填）", en: "Your mobile number (optional)" },
  noNumber: { zh: "未填写", en: "None" },
  erase: { zh: "删除", en: "Delete" },
  eraseLabel: { zh: "删除一位", en: "Delete one digit" },
  clear: { zh: "清空", en: "Clear" },
  callWithout: { zh: "不留号码，直接呼叫", en: "Call without a number" },
  call: { zh: "呼叫党员", en: "Call a member" },
  unfinished: { zh: "号码还差 {n} 位", en: "{n} more digits" },
  cancel: { zh: "取消", en: "Cancel" },
  sending: { zh: "正在发出呼叫…", en: "Sending your call…" },
  sent: { zh: "呼叫已发出", en: "Your call is sent" },
  searching: { zh: "正在通知附近的党员，请在这里稍候", en: "We are telling the members nearby. Please wait here." },
  coming: { zh: "党员正在赶来", en: "Help is coming" },
  team: { zh: "{team}的党员已接单", en: "A member of {team} took your call" },
  waitHere: { zh: "请在这里稍候", en: "Please wait here" },
  texted: { zh: "进展会发短信到您留的手机号", en: "We will text you how it goes" },
  back: { zh: "返回首页", en: "Back" },
  backIn: { zh: "{s} 秒后返回首页", en: "Back to the start in {s} s" },
  keyRevoked: {
    zh: "这块屏幕的呼叫功能已停用，请联系社区工作人员",
    en: "The call button of this screen is switched off. Please ask the community staff.",
  },
} satisfies Record<string, Text>;

type Step =
  | { kind: "idle" }
  | { kind: "keypad" }
  | { kind: "sending" }
  | { kind: "help"; callId: string; phoneLeft: boolean; team: string | null; until: number }
  | { kind: "failed"; problem: Problem };

function digitsShown(digits: string): string {
  // 138 0013 8000: the way a mobile number is read out.
  return [digits.slice(0, 3), digits.slice(3, 7), digits.slice(7)].filter(Boolean).join(" ");
}

export function CallButton(props: { onPress: () => void }) {
  useLang();
  return (
    <button type="button" class="screen-call" onClick={props.onPress}>
      <span class="screen-call-title">{tr(TEXT.button)}</span>
      <span class="screen-call-hint">{tr(TEXT.buttonHint)}</span>
    </button>
  );
}

export function WalkUp(props: { screenId: string; screenKey: string; open: boolean; onClose: () => void }) {
  useLang();
  const [step, setStep] = useState<Step>({ kind: "keypad" });
  const [digits, setDigits] = useState("");
  const [now, setNow] = useState(Date.now());
  const headers = { "X-Screen-Key": props.screenKey };
  const lastTouch = useRef(Date.now());

  const close = () => {
    setDigits("");
    setStep({ kind: "keypad" });
    props.onClose();
  };

  // A clock for the countdowns; the keypad left alone closes by itself.
  useEffect(() => {
    if (!props.open) return;
    lastTouch.current = Date.now();
    const timer = window.setInterval(() => setNow(Date.now()), 500);
    return () => window.clearInterval(timer);
  }, [props.open]);
  useEffect(() => {
    if (step.kind === "keypad" && now - lastTouch.current > KEYPAD_IDLE_MS) close();
    if (step.kind === "help" && now >= step.until) close();
    if (step.kind === "failed" && now - lastTouch.current > backSeconds() * 1000) close();
  }, [now]);

  // Follow the call until a member takes it.
  const following = step.kind === "help" && step.team === null ? step.callId : null;
  useEffect(() => {
    if (!following) return;
    let stopped = false;
    const look = async () => {
      try {
        const progress = await must(
          getScreenCall({ client: anonymous, path: { screen_id: props.screenId, call_id: following }, headers }),
        );
        if (stopped || !progress.team || !TAKEN.includes(progress.status)) return;
        const team = progress.team;
        setStep((s) => (s.kind === "help" ? { ...s, team, until: Date.now() + backSeconds() * 1000 } : s));
      } catch {
        /* the next look may do; the screen keeps what it says */
      }
    };
    const timer = window.setInterval(() => void look(), POLL_MS);
    void look();
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [following]);

  if (!props.open) return null;

  const touch = () => {
    lastTouch.current = Date.now();
  };
  const type = (digit: string) => {
    touch();
    setDigits((d) => (d.length < 11 ? d + digit : d));
  };
  const press = async () => {
    touch();
    const phone = digits.length === 11 ? digits : undefined;
    setStep({ kind: "sending" });
    setDigits(""); // the number leaves the screen with the press
    try {
      const call = await must(
        createScreenCall({ client: anonymous, path: { screen_id: props.screenId }, headers, body: { phone } }),
      );
      setStep({ kind: "help", callId: call.id, phoneLeft: !!phone, team: null, until: Date.now() + backSeconds() * 1000 });
    } catch (problem) {
      setStep({ kind: "failed", problem: problem as Problem });
    }
  };

  if (step.kind === "keypad") {
    const missing = digits.length > 0 && digits.length < 11 ? 11 - digits.length : 0;
    return (
      <div class="walkup" role="dialog" aria-modal="true" aria-labelledby="walkup-title">
        <div class="walkup-panel">
          <h2 id="walkup-title">{tr(TEXT.keypadTitle)}</h2>
          <p class="walkup-hint">{tr(TEXT.keypadHint)}</p>
          <p class="walkup-number" aria-live="polite">
            <span class="walkup-number-label">{tr(TEXT.number)}</span>
            <output class="walkup-digits" data-digits={digits}>
              {digits ? digitsShown(digits) : tr(TEXT.noNumber)}
            </output>
          </p>
          <div class="keypad" role="group" aria-label={tr(TEXT.number)}>
            {["1", "2", "3", "4", "5", "6", "7", "8", "9"].map((d) => (
              <button type="button" class="key" onClick={() => type(d)}>
                {d}
              </button>
            ))}
            <button
              type="button"
              class="key key-word"
              onClick={() => {
                touch();
                setDigits("");
              }}
            >
              {tr(TEXT.clear)}
            </button>
            <button type="button" class="key" onClick={() => type("0")}>
              0
            </button>
            <button
              type="button"
              class="key key-word"
              aria-label={tr(TEXT.eraseLabel)}
              onClick={() => {
                touch();
                setDigits((d) => d.slice(0, -1));
              }}
            >
              {tr(TEXT.erase)}
            </button>
          </div>
          <div class="walkup-actions">
            <button type="button" class="secondary walkup-cancel" onClick={close}>
              {tr(TEXT.cancel)}
            </button>
            <button type="button" class="primary walkup-go" disabled={missing > 0} onClick={() => void press()}>
              {missing > 0 ? tr(TEXT.unfinished, { n: missing }) : digits ? tr(TEXT.call) : tr(TEXT.callWithout)}
            </button>
          </div>
        </div>
      </div>
    );
  }

  const left = step.kind === "help" ? Math.max(0, Math.ceil((step.until - now) / 1000)) : 0;
  return (
    <div class="walkup" role="dialog" aria-modal="true" aria-labelledby="walkup-title">
      <div class="walkup-panel walkup-news" role="status" aria-live="polite">
        {step.kind === "sending" && <h2 id="walkup-title">{tr(TEXT.sending)}</h2>}
        {step.kind === "failed" && (
          <>
            <h2 id="walkup-title" class="walkup-failed">
              {step.problem.code === "invalid_screen_key" ? tr(TEXT.keyRevoked) : problemText(step.problem)}
            </h2>
          </>
        )}
        {step.kind === "help" && step.team === null && (
          <>
            <p class="walkup-mark" aria-hidden="true">
              ✓
            </p>
            <h2 id="walkup-title">{tr(TEXT.sent)}</h2>
            <p class="walkup-big">{tr(TEXT.searching)}</p>
          </>
        )}
        {step.kind === "help" && step.team !== null && (
          <>
            <p class="walkup-mark" aria-hidden="true">
              ✓
            </p>
            <h2 id="walkup-title" class="walkup-coming">
              {tr(TEXT.coming)}
            </h2>
            <p class="walkup-big walkup-team">{tr(TEXT.team, { team: step.team })}</p>
            <p class="walkup-big">{tr(TEXT.waitHere)}</p>
          </>
        )}
        {step.kind === "help" && step.phoneLeft && <p class="walkup-hint">{tr(TEXT.texted)}</p>}
        {step.kind !== "sending" && (
          <div class="walkup-actions">
            <button type="button" class="secondary walkup-back" onClick={close}>
              {tr(TEXT.back)}
            </button>
            {step.kind === "help" && <span class="walkup-countdown">{tr(TEXT.backIn, { s: left })}</span>}
          </div>
        )}
      </div>
    </div>
  );
}
