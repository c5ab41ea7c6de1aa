// One call, live: its timeline from GET /calls/{id}/events and then the
// socket's `call.updated` and `responder.location` events (re-read after a
// reconnect, so that no step is missed), who is coming and where they are,
// then cancel, rate or dispute.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { cancelCall, disputeCall, listCallEvents, rateCall } from "../../gen/sdk.gen";
import type { CallPublic, CallStatus, EventPublic, Point } from "../../gen/types.gen";
import { formatTime, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { live } from "../../live";
import type { LiveEvent } from "../../live";
import { ErrorLine } from "../../ui";
import { CATEGORIES } from "./Press";
import ResidentMap from "./ResidentMap";

const TEXT = {
  searching: { zh: "正在为您寻找附近的党员…", en: "Looking for a party member near you…" },
  offered: { zh: "已通知附近的党员服务队，请稍候", en: "A team near you has been alerted. Please wait." },
  accepted: { zh: "{name} 已接单，马上出发", en: "{name} has taken your call" },
  en_route: { zh: "{name} 正在赶来", en: "{name} is on the way" },
  on_site: { zh: "{name} 已到达", en: "{name} has arrived" },
  resolved: { zh: "已完成，谢谢您的信任", en: "Done. Thank you." },
  cancelled: { zh: "呼叫已取消", en: "The call was cancelled" },
  escalated: { zh: "已转交社区工作人员处理，他们会尽快联系您", en: "Passed to the community's staff: they will contact you soon" },
  disputed: { zh: "您的申诉已转交社区处理", en: "Your dispute has gone to the community" },
  other: { zh: "呼叫状态：{s}", en: "Call status: {s}" },
  someone: { zh: "党员", en: "A party member" },
  step_searching: { zh: "已发出呼叫", en: "Call made" },
  step_offered: { zh: "已通知服务队", en: "Team alerted" },
  step_accepted: { zh: "党员已接单", en: "Accepted" },
  step_en_route: { zh: "党员在路上", en: "On the way" },
  step_on_site: { zh: "党员已到达", en: "Arrived" },
  step_resolved: { zh: "已完成", en: "Done" },
  step_escalated: { zh: "已转交社区处理", en: "Passed to the community" },
  step_cancelled: { zh: "已取消", en: "Cancelled" },
  timeline: { zh: "进度", en: "Progress" },
  coming: { zh: "来帮您的党员", en: "Who is coming" },
  team: { zh: "服务队：{name}", en: "Team: {name}" },
  phone: { zh: "电话：{p}", en: "Phone: {p}" },
  kind: { zh: "求助类型：{k}", en: "Kind of help: {k}" },
  grid: { zh: "所在网格：{g}", en: "Grid: {g}" },
  cancel: { zh: "取消呼叫", en: "Cancel the call" },
  cancelSure: { zh: "确定要取消这次呼叫吗？", en: "Do you really want to cancel this call?" },
  cancelYes: { zh: "是，取消呼叫", en: "Yes, cancel it" },
  cancelNo: { zh: "不取消", en: "No, keep it" },
  rateTitle: { zh: "请为这次服务打分", en: "Please rate the help you had" },
  star: { zh: "{n} 星", en: "{n} stars" },
  rateSend: { zh: "提交评价", en: "Send my rating" },
  rated: { zh: "谢谢您的评价！", en: "Thank you for your rating!" },
  disputeOpen: { zh: "问题没有解决？申诉", en: "Not solved? Dispute it" },
  disputeReason: { zh: "请说说哪里没有解决", en: "Tell us what was not solved" },
  disputeSend: { zh: "提交申诉", en: "Send the dispute" },
  disputeClose: { zh: "不申诉了", en: "Never mind" },
  again: { zh: "返回首页", en: "Back to the start" },
} satisfies Record<string, Text>;

const STEPS: CallStatus[] = ["searching", "offered", "accepted", "en_route", "on_site", "resolved"];
const MOVING = new Set<CallStatus>(["en_route", "on_site"]);
const CLOSED = new Set<CallStatus>(["resolved", "cancelled"]);
const STEP_TEXT: Record<string, Text> = {
  searching: TEXT.step_searching,
  offered: TEXT.step_offered,
  accepted: TEXT.step_accepted,
  en_route: TEXT.step_en_route,
  on_site: TEXT.step_on_site,
  resolved: TEXT.step_resolved,
  escalated: TEXT.step_escalated,
  cancelled: TEXT.step_cancelled,
};

function headline(call: CallPublic): string {
  const name = call.responder?.display_name ?? tr(TEXT.someone);
  if (call.status === "escalated" && call.disputed) return tr(TEXT.disputed);
  const known = (TEXT as Record<string, Text>)[call.status];
  return known ? tr(known, { name }) : tr(TEXT.other, { s: call.status });
}

/** Every event of the call after `after`, all pages. */
async function eventsAfter(id: string, after: number): Promise<EventPublic[]> {
  const out: EventPublic[] = [];
  let cursor: string | undefined;
  do {
    const page = await must(listCallEvents({ client: api, path: { call_id: id }, query: { after, limit: 100, cursor } }));
    out.push(...page.data);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

function Timeline(props: { call: CallPublic; reached: Record<string, string> }) {
  useLang();
  const { call, reached } = props;
  const current = STEPS.indexOf(call.status);
  // A step skipped on the way (accepted straight to on site) counts as passed.
  const furthest = Math.max(current, ...STEPS.map((step, i) => (reached[step] ? i : -1)));
  // A call that left the usual path shows where it went, last.
  const detours = (["escalated", "cancelled"] as CallStatus[]).filter((s) => reached[s] || call.status === s);
  const steps = [...STEPS, ...detours];
  return (
    <ol class="timeline" aria-label={tr(TEXT.timeline)}>
      {steps.map((step, index) => {
        const at = reached[step];
        const now = step === call.status;
        const state = now ? "current" : at !== undefined || index <= furthest ? "done" : "todo";
        return (
          <li class={`step step-${state}`} data-step={step} aria-current={now ? "step" : undefined}>
            <span class="step-dot" aria-hidden="true" />
            <span class="step-label">{tr(STEP_TEXT[step])}</span>
            {at && <time class="step-time">{formatTime(at)}</time>}
          </li>
        );
      })}
    </ol>
  );
}

function Rating(props: { call: CallPublic }) {
  useLang();
  const [stars, setStars] = useState(0);
  const [sent, setSent] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  async function send() {
    setBusy(true);
    setProblem(null);
    try {
      await must(rateCall({ client: api, path: { call_id: props.call.id }, body: { stars } }));
      setSent(true);
    } catch (error) {
      if ((error as Problem).code === "already_rated") setSent(true);
      else setProblem(error as Problem);
    } finally {
      setBusy(false);
    }
  }
  if (sent)
    return (
      <p class="card rated" role="status">
        {tr(TEXT.rated)} {"★".repeat(stars)}
      </p>
    );
  return (
    <section class="card rating" aria-labelledby="rate-title">
      <h2 id="rate-title">{tr(TEXT.rateTitle)}</h2>
      <div class="stars" role="group" aria-labelledby="rate-title">
        {[1, 2, 3, 4, 5].map((n) => (
          <button
            type="button"
            class={`star${n <= stars ? " star-on" : ""}`}
            aria-pressed={n === stars}
            aria-label={tr(TEXT.star, { n })}
            onClick={() => setStars(n)}
          >
            <span aria-hidden="true">{n <= stars ? "★" : "☆"}</span>
          </button>
        ))}
      </div>
      <ErrorLine problem={problem} />
      <button type="button" class="primary wide" disabled={stars === 0 || busy} onClick={() => void send()}>
        {tr(TEXT.rateSend)}
      </button>
    </section>
  );
}

function Dispute(props: { call: CallPublic; onCall: (call: CallPublic) => void }) {
  useLang();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  async function send(event: Event) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      props.onCall(await must(disputeCall({ client: api, path: { call_id: props.call.id }, body: { reason } })));
    } catch (error) {
      setProblem(error as Problem);
    } finally {
      setBusy(false);
    }
  }
  if (!open)
    return (
      <button type="button" class="secondary wide dispute-open" onClick={() => setOpen(true)}>
        {tr(TEXT.disputeOpen)}
      </button>
    );
  return (
    <form class="card dispute" onSubmit={(e) => void send(e)}>
      <label>
        {tr(TEXT.disputeReason)}
        <textarea name="reason" rows={3} required maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <ErrorLine problem={problem} />
      <div class="row">
        <button type="submit" class="primary" disabled={busy || !reason.trim()}>
          {tr(TEXT.disputeSend)}
        </button>
        <button type="button" class="secondary" onClick={() => setOpen(false)}>
          {tr(TEXT.disputeClose)}
        </button>
      </div>
    </form>
  );
}

export default function CallView(props: { initial: CallPublic; onDone: () => void }) {
  useLang();
  const id = props.initial.id;
  const [call, setCall] = useState<CallPublic>(props.initial);
  const [reached, setReached] = useState<Record<string, string>>({});
  const [responderAt, setResponderAt] = useState<Point | null>(props.initial.responder?.location ?? null);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const lastId = useRef(0);
  const lastCallEvent = useRef(props.initial.last_event_id ?? 0);
  const seen = useRef(new Set<number>());
  const question = useRef<HTMLElement>(null);
  useEffect(() => {
    if (confirming) question.current?.scrollIntoView({ block: "center" });
  }, [confirming]);

  /** Take events in (from the list or the socket), each once, in id order. */
  const take = (events: (EventPublic | LiveEvent)[]) => {
    const fresh = events.filter((e) => e.call_id === id && !seen.current.has(e.id)).sort((a, b) => a.id - b.id);
    for (const event of fresh) {
      seen.current.add(event.id);
      lastId.current = Math.max(lastId.current, event.id);
      if (event.type === "call.updated") {
        const data = event.data as CallPublic;
        setReached((old) => (old[data.status] ? old : { ...old, [data.status]: event.at }));
        if (event.id >= lastCallEvent.current) {
          lastCallEvent.current = event.id;
          setCall(data);
          if (!MOVING.has(data.status)) setResponderAt(null);
          else if (data.responder?.location) setResponderAt(data.responder.location);
        }
      } else if (event.type === "responder.location") {
        setResponderAt(event.data as Point);
      }
    }
  };

  useEffect(() => {
    let gone = false;
    const catchUp = () =>
      eventsAfter(id, lastId.current)
        .then((events) => !gone && take(events))
        .catch((error: Problem) => !gone && setProblem(error));
    const offs = [
      live.on("call.updated", (event) => take([event])),
      live.on("responder.location", (event) => take([event])),
      live.onReconnect(() => void catchUp()),
    ];
    void catchUp();
    return () => {
      gone = true;
      for (const off of offs) off();
    };
  }, [id]);

  const apply = (next: CallPublic) => {
    if ((next.last_event_id ?? 0) >= lastCallEvent.current) {
      lastCallEvent.current = next.last_event_id ?? lastCallEvent.current;
      setCall(next);
    }
  };

  async function cancel() {
    setBusy(true);
    setProblem(null);
    try {
      apply(await must(cancelCall({ client: api, path: { call_id: id }, body: {} })));
      setConfirming(false);
    } catch (error) {
      setProblem(error as Problem);
    } finally {
      setBusy(false);
    }
  }

  const closed = CLOSED.has(call.status);
  const showMap = MOVING.has(call.status) && responderAt !== null;
  const responder = call.responder;
  return (
    <div class={`call-view status-${call.status}`} data-call-id={call.id} data-status={call.status}>
      <div class="call-main">
        <section class="card call-head" aria-live="polite">
          <p class="call-status" role="status">
            {headline(call)}
          </p>
          <p class="hint">
            {tr(TEXT.kind, { k: tr(CATEGORIES[call.category] ?? { zh: call.category, en: call.category }) })}
            {call.grid && (
              <>
                <br />
                {tr(TEXT.grid, { g: call.grid.name })}
              </>
            )}
          </p>
        </section>

        {call.status === "resolved" && (
          <>
            <Rating call={call} />
            <Dispute call={call} onCall={apply} />
          </>
        )}

        {responder && (
          <section class="card responder" aria-labelledby="responder-title">
            <h2 id="responder-title">{tr(TEXT.coming)}</h2>
            <p class="responder-name">{responder.display_name}</p>
            {call.team && <p>{tr(TEXT.team, { name: call.team.name })}</p>}
            <p>{tr(TEXT.phone, { p: responder.phone_masked })}</p>
          </section>
        )}

        <ErrorLine problem={problem} />

        {!closed &&
          (confirming ? (
            <section ref={question} class="card confirm" role="alertdialog" aria-labelledby="cancel-q">
              <p id="cancel-q" class="confirm-question">
                {tr(TEXT.cancelSure)}
              </p>
              <div class="row">
                <button type="button" class="primary" disabled={busy} onClick={() => void cancel()}>
                  {tr(TEXT.cancelYes)}
                </button>
                <button type="button" class="secondary" onClick={() => setConfirming(false)}>
                  {tr(TEXT.cancelNo)}
                </button>
              </div>
            </section>
          ) : (
            <button type="button" class="secondary wide cancel" onClick={() => setConfirming(true)}>
              {tr(TEXT.cancel)}
            </button>
          ))}

        {closed && (
          <button type="button" class="secondary wide again" onClick={props.onDone}>
            {tr(TEXT.again)}
          </button>
        )}
      </div>

      <div class="call-side">
        {showMap && responderAt && (
          <ResidentMap
            mode="follow"
            home={call.location}
            responder={responderAt}
            responderName={responder?.display_name ?? tr(TEXT.someone)}
          />
        )}
        <section class="card progress">
          <h2>{tr(TEXT.timeline)}</h2>
          <Timeline call={call} reached={reached} />
        </section>
      </div>
    </div>
  );
}
